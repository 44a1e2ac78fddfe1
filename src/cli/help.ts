/**
 * What `--help` adds to commander's option lists: the environment variables imgmake reads, the
 * exit codes (exit.ts's table) and an example per command. test/cli-conventions.test.ts checks
 * that every `IMGMAKE_*` name the code reads is listed here, and the README's Commands section
 * against the commands.
 */
import { EXIT_CODES } from './exit.js';

/** Every environment variable imgmake reads, and what it does. */
export const ENVIRONMENT: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['IMGMAKE_CACHE', 'the cache directory, when --cache is not given'],
  ['IMGMAKE_VAR_NAME', 'set the definition variable NAME, like --var NAME=VALUE (which wins)'],
  ['IMGMAKE_MAX_CACHE_SIZE', 'like --max-cache-size (which wins)'],
  ['IMGMAKE_REMOTE', 'the remote cache URL, like --remote (which wins; empty: no remote)'],
  ['IMGMAKE_REMOTE_READ_ONLY', '1: like --remote-read-only'],
  ['IMGMAKE_REMOTE_AUTH', "the remote's whole Authorization header value (\"Bearer …\")"],
  ['IMGMAKE_REMOTE_USER', 'with IMGMAKE_REMOTE_PASSWORD: basic auth for the remote'],
  ['IMGMAKE_REMOTE_PASSWORD', 'see IMGMAKE_REMOTE_USER'],
  ['DOCKER_CONFIG', "where docker login's config.json is (default ~/.docker): an oci:// remote's credentials when IMGMAKE_REMOTE_AUTH and IMGMAKE_REMOTE_USER give none"],
  ['CI', 'set (as CI services do): plain progress lines even on a terminal (--progress auto)'],
  ['NO_COLOR', 'set and not empty: no colour on a terminal either'],
];

/** One example per command (the key is the command as typed: `cache gc`). */
export const EXAMPLES: Readonly<Record<string, string>> = {
  build: 'imgmake build qcow2 --blueprint web.toml   # the catalog\'s qcow2 with what web.toml asks for (in a project: its target qcow2)',
  list: 'imgmake list --filter type:qcow2  # the catalog\'s images, their files, sizes and blueprint options',
  watch: 'imgmake watch qcow2 --boot       # rebuild and reboot on every edit',
  lock: 'imgmake lock --update            # resolve every package again into imgmake.lock',
  plan: 'imgmake plan qcow2               # what is cached, what will run, and why',
  targets: 'imgmake targets                  # the targets of ./imgmake.yaml (or the nearest one above)',
  rules: 'imgmake rules files.copy         # one rule\'s options and inputs',
  boot: 'imgmake boot qcow2 --bios        # boot out/qcow2/*.qcow2 in QEMU on this terminal',
  shell: 'imgmake shell os.packages -- ls /etc   # run a command in the tree after that stage',
  export: 'imgmake export os.packages /tmp/tree   # copy the tree after that stage out',
  log: 'imgmake log os.packages          # the log of that stage\'s last run',
  push: 'imgmake push out/oci/image.oci.tar oci://127.0.0.1:5000/debian:12   # send the oci image to a registry',
  clean: 'imgmake clean --cache --yes      # remove out/ and the cache',
  completion: 'imgmake completion bash > /etc/bash_completion.d/imgmake',
  cache: 'imgmake cache ls                 # what the cache holds (cache --help lists its commands)',
  'cache info': 'imgmake cache info --cache /srv/imgmake-cache',
  'cache ls': 'imgmake cache ls --debs',
  'cache gc': 'imgmake cache gc --max-size 10G --dry-run',
  'cache verify': 'imgmake cache verify',
  'cache prune': 'imgmake cache prune --keep qcow2',
};

function table(rows: ReadonlyArray<readonly [string | number, string]>): string {
  const width = Math.max(...rows.map(([k]) => String(k).length));
  return rows.map(([k, v]) => `  ${String(k).padEnd(width)}  ${v}`).join('\n');
}

/** After the root command's help: examples, environment, exit codes. */
export function rootHelpFooter(): string {
  return [
    '',
    'The definition is -f FILE, else the nearest imgmake.yaml in this folder or one above it (-C DIR: start there).',
    '',
    'Examples:',
    ...Object.values(EXAMPLES).map((e) => `  ${e}`),
    '',
    'Environment:',
    table(ENVIRONMENT),
    '',
    'Exit codes:',
    table(EXIT_CODES),
  ].join('\n');
}

/** After a subcommand's help: its example. */
export function commandHelpFooter(command: string): string {
  const e = EXAMPLES[command];
  return e ? `\nExample:\n  ${e}` : '';
}
