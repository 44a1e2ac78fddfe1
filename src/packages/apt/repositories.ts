/**
 * A blueprint's repositories → apt sources in the image: one deb822 file per repository in
 * /etc/apt/sources.list.d (ID.sources, or its `filename`), and its armoured keys in
 * /etc/apt/keyrings, named by `Signed-By`. The image's apt then installs from them; the build
 * itself does not (composer's `install_from` and the lock's sources stay separate: refused).
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
