/**
 * docs/blueprint.md is generated from the support table (support.ts), the field table
 * (schema.ts) and the path policies (policy.ts), so the docs cannot drift from what the reader
 * accepts. test/blueprint-doc.test.ts fails when the committed file differs from
 * `renderBlueprintDoc()`; `UPDATE_GOLDEN=1 node test/run.js blueprint-doc` rewrites it.
 */
import { DIRECTORIES_POLICY, FILES_POLICY, MOUNTPOINT_POLICY, type Policy } from './policy.js';
import { TOP, type Field, type Fields } from './schema.js';
import { OPTIONS, shortName, SUPPORT, WHY_NOT } from './support.js';
import { ROUNDS } from '../catalog/crypt.js';

function fieldAt(path: string): Field | undefined {
  let fields: Fields | undefined = TOP;
  let f: Field | undefined;
  for (const part of path.split('.')) {
    f = fields?.[part];
    if (!f) return undefined;
    fields = f.kind === 'table' || f.kind === 'tables' ? f.fields : undefined;
  }
  return f;
}

function kindOf(f: Field | undefined): string {
  if (!f) return '';
  switch (f.kind) {
    case 'string':
      return 'string';
    case 'integer':
      return 'integer';
    case 'boolean':
      return 'boolean';
    case 'size':
      return 'size: bytes or "10 GiB"';
    case 'owner':
      return 'name or id';
    case 'mode':
      return 'octal string "0644"';
    case 'boolOrString':
      return 'boolean or string';
    case 'strings':
      return 'array of strings';
    case 'table':
      return `table: ${Object.keys(f.fields).filter((k) => f.fields[k]!.kind !== 'unmapped').join(', ')}`;
    case 'tables':
      return `array of tables: ${Object.keys(f.fields).filter((k) => f.fields[k]!.kind !== 'unmapped').join(', ')}`;
    case 'unmapped':
      return '';
  }
}

function policyList(p: Policy): string {
  const denied = Object.entries(p).filter(([, r]) => r === 'deny').map(([k]) => `\`${k}\``);
  const exact = Object.entries(p).filter(([, r]) => r === 'exact').map(([k]) => `\`${k}\``);
  const allowed = Object.entries(p).filter(([k, r]) => r === 'allow' && k !== '/').map(([k]) => `\`${k}\``);
  return `refused at and below ${denied.join(', ')}${allowed.length > 0 ? `; allowed again at and below ${allowed.join(', ')}` : ''}${exact.length > 0 ? `; ${exact.join(', ')} only as a whole, nothing below it` : ''}`;
}

export function renderBlueprintDoc(): string {
  const types = Object.keys(SUPPORT);
  const out: string[] = [];
  out.push('<!-- Generated from src/blueprint/support.ts, schema.ts and policy.ts by src/blueprint/doc.ts. Do not edit:');
  out.push('     change the tables, then `npx tsc -p . && UPDATE_GOLDEN=1 node test/run.js blueprint-doc`. -->');
  out.push('');
  out.push('# Blueprints');
  out.push('');
  out.push('A blueprint says *what* goes into an image (packages, users, services, files, filesystem sizes), never *how*.');
  out.push("imgmake reads composer's blueprint format: TOML (`*.toml`), or the same tree as JSON (`*.json`) or YAML");
  out.push('(`*.yaml`, `*.yml`). Examples: [examples/blueprints/](../examples/blueprints/).');
  out.push('');
  out.push('Nothing is silently ignored. A blueprint is checked before anything runs, and every mistake is reported');
  out.push('with its file:line:column, what is wrong and what to do (exit code 2): a syntax error, an unknown field (with');
  out.push('"did you mean"), a value of the wrong type, a bad name (user, group, unit, hostname, port), a path outside');
  out.push("composer's path policy, a name given twice, and an option the image type does not support (the table below).");
  out.push('');
  out.push('`imgmake build TYPE --blueprint FILE` builds the catalog\'s definition of TYPE with the blueprint on top');
  out.push('([catalog.md](catalog.md) says which stage each option becomes). "yes" below means the image type accepts the');
  out.push('option and the build honours it; an option no type accepts is an error.');
  out.push('');
  out.push('## Options and the image types that support them');
  out.push('');
  out.push(`| option | value | what it does | ${types.join(' | ')} |`);
  out.push(`|---|---|---|${types.map(() => '---|').join('')}`);
  for (const row of OPTIONS.filter((r) => r.mapped)) {
    const marks = types.map((t) => (SUPPORT[t]!.includes(row.option) ? 'yes' : WHY_NOT[t]?.[row.option] ? `no: ${WHY_NOT[t]![row.option]}` : 'no'));
    out.push(`| \`${shortName(row.option)}\` | ${kindOf(fieldAt(row.option))} | ${row.summary} | ${marks.join(' | ')} |`);
  }
  out.push('');
  out.push('Option names leave out the `customizations.` prefix: `kernel.append` is `[customizations.kernel] append = …`.');
  out.push('');
  out.push('## Fields with no mapping yet');
  out.push('');
  out.push("composer knows these fields; imgmake reads them (so they are not reported as typos) and refuses them for every");
  out.push('image type, at the field, until a mapping exists:');
  out.push('');
  for (const row of OPTIONS.filter((r) => !r.mapped)) out.push(`- \`${shortName(row.option)}\`: ${row.summary}`);
  out.push('');
  out.push("## composer's path policy");
  out.push('');
  out.push('Paths are absolute and canonical (no `//`, `.`, `..` or trailing `/`); the longest matching prefix decides.');
  out.push('');
  out.push(`- **files**: ${policyList(FILES_POLICY)}.`);
  out.push(`- **directories**: ${policyList(DIRECTORIES_POLICY)}.`);
  out.push(`- **filesystem mountpoints**: ${policyList(MOUNTPOINT_POLICY)}.`);
  out.push('');
  out.push('## Values');
  out.push('');
  out.push('- Sizes: an integer number of bytes, or a string with a unit: `"512 MiB"`, `"10 GiB"`, `"2 GB"` (B, kB, KiB, MB, MiB,');
  out.push('  GB, GiB, TB, TiB; decimal units are powers of 1000). composer\'s old `size` is read as `minsize`.');
  out.push('- Modes: an octal string, `"0644"` or `"755"`.');
  out.push('- Passwords: a crypt(3) hash (`$6$…`, `$y$…`), as `mkpasswd` prints, used as written; or plain text, hashed reproducibly (below).');
  out.push('- Firewall ports: `PORT:PROTOCOL`, `LOW-HIGH:PROTOCOL` or `SERVICE:PROTOCOL`, protocol tcp, udp, sctp or dccp.');
  out.push('- Services: systemd unit names; without a suffix, `.service` is meant. A unit is in one state only.');
  out.push('- Repositories (apt): each base URL is followed by the suite and components, `"https://HOST/debian bookworm main"` (a flat');
  out.push('  repository: the suite ending in `/` alone); keys are pasted armoured (`-----BEGIN PGP PUBLIC KEY BLOCK-----`).');
  out.push('  `install_from = true` (composer\'s name) makes the build install from it too: `imgmake lock` (and a build\'s implicit');
  out.push('  lock) resolves the blueprint\'s packages from the Debian mirror and it, apt checking its Release signature against');
  out.push('  its `gpgkeys` (a repository without keys is refused unless `gpgcheck = false` says to install from it unchecked).');
  out.push('  The lock records, per package, the repository it came from (its `id`) and its path and sha256, so a locked build');
  out.push('  fetches and checks the same bytes again; the package stage\'s key changes only through that locked set. One');
  out.push('  http(s) base URL per such repository; a signature that does not verify fails the lock (exit 1, nothing written).');
  out.push('- TOML dates and times are refused: no field takes one.');
  out.push('');
  out.push('## Passwords');
  out.push('');
  out.push('A `password` that is not a crypt(3) hash is plain text, and imgmake hashes it before anything else sees it:');
  out.push('the composed definition, `--with-manifest`, the cache keys and the image hold only the hash. The hash is');
  out.push(`SHA-512-crypt with ${ROUNDS} rounds (\`$6$rounds=${ROUNDS}$SALT$…\`, which libcrypt and so pam_unix check), and`);
  out.push('its 16-character **salt is derived, not random**: SHA-256 of a fixed label, the blueprint\'s `name` and the user\'s');
  out.push('name (src/catalog/crypt.ts). So the same blueprint gives the same hash, the same stage key and the same image');
  out.push('bytes on every build and every machine, and editing anything else reruns nothing of the users stage.');
  out.push('');
  out.push('The trade-off: the salt is known to whoever has the blueprint. An attacker who has it can begin a dictionary');
  out.push('attack on that one account before the image exists, and every image built from the blueprint carries the same');
  out.push('hash. Different users and different blueprints still get different salts, so no precomputed table serves');
  out.push('many accounts, and the raised rounds slow each guess. Plain text also sits in the blueprint file itself. For an');
  out.push('image that leaves your hands, write the hash yourself (`mkpasswd -m yescrypt`, random salt), log in with');
  out.push('`key`, or set the password at first boot.');
  out.push('');
  return `${out.join('\n')}`;
}
