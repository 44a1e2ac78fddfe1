/**
 * A blueprint's repositories → apt sources in the image: one deb822 file per repository in
 * /etc/apt/sources.list.d (ID.sources, or its `filename`), and its armoured keys in
 * /etc/apt/keyrings, named by `Signed-By`. The image's apt then installs from them.
 *
 * A repository marked `install_from = true` (composer's name) also takes part in the build:
 * `installFrom` turns it into an entry of the package stage's `repositories` option, which the
 * lock resolves from besides the Debian mirror, its Release signature checked against its
 * armoured gpgkeys (lock.ts). It needs a key unless `gpgcheck = false` says otherwise (the
 * blueprint's check refuses it first), one base URL (the lock records, per package, which
 * repository it came from and its path below that URL) and an http(s) URL (what the lock and
 * the fetch reach).
 *
 * apt's shape of a repository: composer's `baseurls` are `URL SUITE COMPONENT…` here
 * (docs/blueprint.md), one stanza each. What apt has no field for is refused at its line:
 * `priority` (dnf's 1–99, not an apt pin), `sslverify = false`, a key by URL (it would be
 * fetched at build time without a digest: paste the armoured key), a base URL without a suite.
 *
 * Pure. The catalog's mapping (src/catalog/customize.ts) is handed it by composition
 * (cli/catalog.ts): it names no package format itself.
 */
import { diagnostic, type Diagnostic } from '../../diagnostic.js';
import type { Repository } from '../../blueprint/index.js';
import type { ExtraRepository } from './lock.js';

export interface RepoFile {
  path: string;
  content: string;
  mode?: string;
}

/** The files of every repository; errors are pushed with the blueprint's positions. */
export function repositoryFiles(repos: readonly Repository[], errors: Diagnostic[]): RepoFile[] {
  const out: RepoFile[] = [];
  for (const r of repos) {
    const id = r.id.value;
    const bad = (loc: Repository['loc'], message: string, hint: string): void => void errors.push(diagnostic('invalid-value', message, loc, hint));
    if (r.priority) bad(r.priority.loc, `repository "${id}": priority is dnf's; apt orders sources by pin priority instead`, 'leave priority out, and pin with a file in /etc/apt/preferences.d (customizations.files) if you need to');
    if (r.sslverify?.value === false) bad(r.sslverify.loc, `repository "${id}": apt has no per-source switch to skip TLS verification`, 'leave sslverify out, or use an http:// URL (apt checks the signature, not the transport)');
    const filename = r.filename?.value ?? `${id}.sources`;
    if (!/^[A-Za-z0-9_.-]+\.sources$/.test(filename)) {
      bad(r.filename?.loc ?? r.id.loc, `repository "${id}": file name ${JSON.stringify(filename)} is not an apt sources file name`, 'name it ID.sources: letters, digits, "_", "." and "-", ending in .sources');
    }
    const keys: string[] = [];
    r.gpgkeys.forEach((k, i) => {
      if (!k.value.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
        bad(k.loc, `repository "${id}": a key by URL would be fetched at build time, unchecked`, 'paste the armoured key itself (-----BEGIN PGP PUBLIC KEY BLOCK----- …)');
        return;
      }
      const path = `/etc/apt/keyrings/imgmake-${id.replace(/[^A-Za-z0-9_.-]/g, '-')}-${i + 1}.asc`;
      keys.push(path);
      out.push({ path, content: `${k.value.trim()}\n` });
    });
    const stanzas: string[] = [];
    for (const u of r.baseurls) {
      const [uri, suite, ...components] = u.value.trim().split(/\s+/);
      if (!suite) {
        bad(u.loc, `repository "${id}": base URL ${JSON.stringify(u.value)} has no suite`, `write the suite and components after the URL: "${uri} bookworm main"`);
        continue;
      }
      const flat = suite.endsWith('/');
      if (flat && components.length > 0) bad(u.loc, `repository "${id}": a flat repository (suite ending in "/") has no components`, `write "${uri} ${suite}" alone`);
      if (!flat && components.length === 0) bad(u.loc, `repository "${id}": base URL ${JSON.stringify(u.value)} has no components`, `write them after the suite: "${uri} ${suite} main"`);
      stanzas.push(
        [
          ...(r.name ? [`X-Repolib-Name: ${r.name.value.replace(/[\r\n]+/g, ' ')}`] : []),
          'Types: deb',
          `URIs: ${uri}`,
          `Suites: ${suite}`,
          ...(components.length ? [`Components: ${components.join(' ')}`] : []),
          ...(r.enabled?.value === false ? ['Enabled: no'] : []),
          ...(r.gpgcheck?.value === false ? ['Trusted: yes'] : keys.length ? [`Signed-By: ${keys.join(' ')}`] : []),
        ].join('\n'),
      );
    }
    out.push({ path: `/etc/apt/sources.list.d/${filename}`, content: `# Written by imgmake from the blueprint's repository "${id}".\n${stanzas.join('\n\n')}\n` });
  }
  return out;
}

const ARMOURED = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/**
 * The package stage's options for the repositories marked `install_from = true`:
 * `{repositories: [{id, uri, suite, components, keys | trusted}]}`, or `{}` when none is.
 * Errors are pushed with the blueprint's positions; what repositoryFiles reports of the same
 * repository (a key by URL, a base URL without a suite) is not reported again.
 */
export function installFrom(repos: readonly Repository[], errors: Diagnostic[]): { repositories?: ExtraRepository[] } {
  const out: ExtraRepository[] = [];
  for (const r of repos) {
    if (r.install_from?.value !== true) continue;
    const id = r.id.value;
    const bad = (loc: Repository['loc'], message: string, hint: string): void => void errors.push(diagnostic('invalid-value', message, loc, hint));
    if (id === 'archive' || id === 'security') {
      bad(r.id.loc, `repository "${id}": the lock names the Debian mirror's sources "archive" and "security"`, 'give the repository another id');
      continue;
    }
    if (r.baseurls.length > 1) {
      bad(r.baseurls[1]!.loc, `repository "${id}" is installed from (install_from = true) but has ${r.baseurls.length} base URLs`, 'give it one base URL: the lock records which repository each package came from; write another [[customizations.repositories]] for another suite');
      continue;
    }
    const u = r.baseurls[0];
    if (!u) continue; // the blueprint's check reported it
    const [uri, suite, ...components] = u.value.trim().split(/\s+/);
    if (!suite) continue; // repositoryFiles reported it
    if (!/^https?:\/\//.test(uri!)) {
      bad(u.loc, `repository "${id}" is installed from (install_from = true), but ${uri} is not an http(s) URL`, 'serve it over http:// or https://: the lock and the build fetch from it (the signature, not the transport, is checked)');
      continue;
    }
    const trusted = r.gpgcheck?.value === false;
    const keys = r.gpgkeys.map((k) => k.value).filter((k) => k.includes(ARMOURED));
    if (!trusted && keys.length === 0) continue; // the blueprint's check (no key) or repositoryFiles (a key by URL) reported it
    out.push({ id, uri: uri!, suite, ...(components.length ? { components } : {}), ...(trusted ? { trusted: true } : { keys: keys.map((k) => `${k.replace(/\r\n?/g, '\n').trim()}\n`) }) });
  }
  return out.length ? { repositories: out } : {};
}
