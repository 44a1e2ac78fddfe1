/**
 * `imgmake completion bash|zsh|fish`: a completion script made from the command tree itself
 * (commander's commands and options), so it never lags behind a new command or flag. Target
 * names come from `imgmake targets --names` at completion time (it reads only the definition,
 * as any user, in a fraction of a second), with the line's `-f FILE` and `-C DIR`.
 *
 * This module does not install anything: the user redirects the script where their shell reads it.
 */
import type { Command, Option } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Spec {
  /** `""` for the top level, `build`, `cache gc`. */
  path: string;
  subcommands: string[];
  options: { flags: string[]; takesValue: boolean; description: string }[];
  /** Its arguments are targets (build, plan, watch, boot; cache prune --keep). */
  targets: boolean;
}

/** Commands whose arguments (or `--keep` values) are target names. */
const TARGET_COMMANDS = new Set(['build', 'watch', 'plan', 'boot', 'cache prune']);

function specs(root: Command): Spec[] {
  const all: Spec[] = [];
  const walk = (c: Command, path: string): void => {
    const options = [...(c.options as readonly Option[])].filter((o) => !o.hidden);
    all.push({
      path,
      subcommands: c.commands.map((s) => s.name()),
      options: [
        ...options.map((o) => ({ flags: [o.short, o.long].filter((f): f is string => !!f), takesValue: o.required || o.optional, description: o.description })),
        { flags: ['-h', '--help'], takesValue: false, description: 'show help' },
      ],
      targets: TARGET_COMMANDS.has(path),
    });
    for (const s of c.commands) walk(s, path ? `${path} ${s.name()}` : s.name());
  };
  walk(root, '');
  return all;
}

export function completionScript(shell: Shell, root: Command): string {
  const s = specs(root);
  switch (shell) {
    case 'bash':
      return bash(s);
    case 'zsh':
      return zsh(s);
    case 'fish':
      return fish(s);
  }
}

/** Options (of any command) that take a value: the word after them is not a command. */
function valueFlags(s: Spec[]): string[] {
  return [...new Set(s.flatMap((x) => x.options.filter((o) => o.takesValue).flatMap((o) => o.flags)))].sort();
}

const words = (x: Spec): string => [...x.subcommands, ...x.options.flatMap((o) => o.flags)].join(' ');

function bash(s: Spec[]): string {
  const cases = s.map((x) => `    ${JSON.stringify(x.path)}) w=${JSON.stringify(words(x))}${x.targets ? '; t=1' : ''} ;;`);
  return `# imgmake completion for bash: imgmake completion bash > /etc/bash_completion.d/imgmake
_imgmake_targets() {
  imgmake "$@" targets --names 2>/dev/null
}
_imgmake() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} path="" i w="" t="" skip=""
  local -a def=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    local x=\${COMP_WORDS[i]}
    if [[ -n $skip ]]; then skip=""; continue; fi
    case "$x" in
      -f|--file|-C|--directory) def+=("$x" "\${COMP_WORDS[i+1]}"); skip=1 ;;
      ${valueFlags(s).join('|')}) skip=1 ;;
      -*) ;;
      *) path=\${path:+$path }$x ;;
    esac
  done
  case "$prev" in
    ${valueFlags(s).join('|')}) COMPREPLY=(); compopt -o default 2>/dev/null; return ;;
  esac
  case "$path" in
${cases.join('\n')}
    *) return ;;
  esac
  [[ -n $t && $cur != -* ]] && w="$w $(_imgmake_targets "\${def[@]}")"
  COMPREPLY=($(compgen -W "$w" -- "$cur"))
}
complete -F _imgmake imgmake
`;
}

function zsh(s: Spec[]): string {
  const cases = s.map((x) => `    ${JSON.stringify(x.path)}) w=(${words(x)})${x.targets ? '; t=1' : ''} ;;`);
  return `#compdef imgmake
# imgmake completion for zsh: imgmake completion zsh > "\${fpath[1]}/_imgmake"
_imgmake() {
  local path_="" i x skip="" t="" prev=\${words[CURRENT-1]}
  local -a w def
  for ((i = 2; i < CURRENT; i++)); do
    x=\${words[i]}
    if [[ -n $skip ]]; then skip=""; continue; fi
    case "$x" in
      -f|--file|-C|--directory) def+=("$x" "\${words[i+1]}"); skip=1 ;;
      ${valueFlags(s).join('|')}) skip=1 ;;
      -*) ;;
      *) path_=\${path_:+$path_ }$x ;;
    esac
  done
  case "$prev" in
    ${valueFlags(s).join('|')}) _files; return ;;
  esac
  case "$path_" in
${cases.join('\n')}
    *) return 1 ;;
  esac
  [[ -n $t && \${words[CURRENT]} != -* ]] && w+=(\${(f)"$(imgmake "\${def[@]}" targets --names 2>/dev/null)"})
  compadd -- $w
}
compdef _imgmake imgmake
`;
}

function fish(s: Spec[]): string {
  const lines = ['# imgmake completion for fish: imgmake completion fish > ~/.config/fish/completions/imgmake.fish', 'complete -c imgmake -f'];
  const q = (t: string): string => `'${t.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  for (const x of s) {
    const parts = x.path ? x.path.split(' ') : [];
    // Reached when the path's words were typed and none of this level's subcommands yet.
    const seen = parts.map((p) => `__fish_seen_subcommand_from ${p}`);
    const cond = x.path === '' ? '__fish_use_subcommand' : [...seen, ...(x.subcommands.length ? [`not __fish_seen_subcommand_from ${x.subcommands.join(' ')}`] : [])].join('; and ');
    if (x.subcommands.length) lines.push(`complete -c imgmake -n ${q(cond)} -a ${q(x.subcommands.join(' '))}`);
    for (const o of x.options) {
      const flags = o.flags.map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(' ');
      lines.push(`complete -c imgmake -n ${q(cond)} ${flags}${o.takesValue ? ' -r' : ''} -d ${q(o.description.split(/[:(;]/)[0]!.trim())}`);
    }
    if (x.targets) lines.push(`complete -c imgmake -n ${q(cond)} -a '(imgmake targets --names 2>/dev/null)'`);
  }
  return `${lines.join('\n')}\n`;
}
