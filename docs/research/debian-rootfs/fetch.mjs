// Fetch every .deb of a lock.tsv by URL with node's fetch, verify size + sha256, store as
// CAS/sha256/<2>/<rest> (temp file + rename), and hardlink into REPO/<name>_<ver>_<arch>.deb.
// usage: node fetch.mjs LOCK.tsv CASDIR REPODIR [concurrency]
import { readFileSync, mkdirSync, existsSync, linkSync, renameSync, createWriteStream, unlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
const [lockPath, cas, repo, conc = '6'] = process.argv.slice(2);
const rows = readFileSync(lockPath, 'utf8').trim().split('\n').map(l => { const [name, version, arch, priority, section, url, size, sha256] = l.split('\t'); return { name, version, arch, url, size: +size, sha256 }; });
mkdirSync(repo, { recursive: true });
let bytes = 0, fetched = 0; const t0 = Date.now();
async function one(r) {
  const dir = `${cas}/sha256/${r.sha256.slice(0, 2)}`; const dest = `${dir}/${r.sha256.slice(2)}`;
  mkdirSync(dir, { recursive: true });
  if (!existsSync(dest)) {
    const res = await fetch(r.url);
    if (!res.ok) throw new Error(`${r.url}: HTTP ${res.status}`);
    const tmp = `${dest}.tmp-${process.pid}`; const h = createHash('sha256'); const out = createWriteStream(tmp); let n = 0;
    for await (const chunk of res.body) { h.update(chunk); n += chunk.length; if (!out.write(chunk)) await new Promise(ok => out.once('drain', ok)); }
    await new Promise((ok, ko) => out.end(e => e ? ko(e) : ok()));
    const got = h.digest('hex');
    if (n !== r.size || got !== r.sha256) { unlinkSync(tmp); throw new Error(`${r.url}: size ${n}/${r.size} sha256 ${got} != ${r.sha256}`); }
    renameSync(tmp, dest); bytes += n; fetched++;
  }
  const link = `${repo}/${decodeURIComponent(basename(new URL(r.url).pathname))}`;
  if (!existsSync(link)) linkSync(dest, link);
}
const queue = [...rows];
await Promise.all(Array.from({ length: +conc }, async () => { while (queue.length) await one(queue.shift()); }));
console.log(`fetched ${fetched}/${rows.length} debs, ${(bytes / 1e6).toFixed(1)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
