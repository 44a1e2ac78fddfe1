// Turn lock.tsv into the proposed imgmake.lock shape (sources by alias, paths relative to the archive root).
// usage: node lock2json.mjs lock.tsv > lock.json
import { readFileSync } from 'node:fs';
const bases = { '${MIRROR_BASE}/debian/': 'debian', '${MIRROR_BASE}/debian-security/': 'debian-security' };
const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map(l => l.split('\t'));
const packages = rows.map(([name, version, arch, priority, section, url, size, sha256]) => {
  const base = Object.keys(bases).find(b => url.startsWith(b));
  return { name, version, arch, priority, section, source: bases[base], path: decodeURIComponent(url.slice(base.length)), size: +size, sha256 };
});
console.log(JSON.stringify({ lockVersion: 1, sources: Object.fromEntries(Object.entries(bases).map(([u, n]) => [n, u])), packages }, null, 1));
