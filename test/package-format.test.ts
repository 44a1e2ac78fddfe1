/**
 * The package-format contract from the core's side, with a third format made up here (no
 * package manager: its "resolver" lists files a loopback HTTP server serves). Everything else is
 * real: a rules folder with a rule whose rule.json says `"lock": "blob"`, load, attachLocks and
 * imgmake.lock, computeKeys, and the fetch into a real cacache with the format's verify hook.
 * What it shows: a format the core has never heard of needs no change outside its own object.
 * Plus the apt format's digest pinned to its value before the package layer existed, so the
 * Debian package stage keeps its cache key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnostic } from '../src/diagnostic.js';
import { buildGraph } from '../src/graph.js';
import { formatDigest, type Digest } from '../src/ids.js';
import { canonicalJson, computeKeys, sha256 } from '../src/key.js';
import { load } from '../src/load/index.js';
import { apt } from '../src/packages/apt/index.js';
import { attachLocks, fetchPackageInputs, readLocks, type LockTable, type PackageFormat } from '../src/packages/index.js';
import { fail, ok } from '../src/result.js';
import { loadRules } from '../src/rule.js';
import { bwrapSandbox } from '../src/sandbox/run.js';

interface BlobEntry {
  name: string;
  sha256: string;
  size: number;
}

interface BlobRequest {
  names: string[];
  /** Where the blobs are: part of the request, not of the lock (as an RPM repository's URL). */
  repo?: string;
}

function blobFormat(calls: { resolved: number; verified: string[]; refuse?: string }): PackageFormat<BlobRequest, BlobEntry, { names: string[] }> {
  return {
    name: 'blob',
    input: 'blobs',
    noun: 'blobs',
    request: (options) => ({ names: [...(options.names as string[])].sort(), ...(options.repo ? { repo: options.repo as string } : {}) }),
    lockRequest: (r) => ({ names: r.names }),
    describe: (r) => r.names.join(' '),
    async resolve(r) {
      calls.resolved++;
      const entries: BlobEntry[] = [];
      for (const name of r.names) {
        const res = await fetch(`${r.repo}/${name}`);
        if (!res.ok) return fail(`no blob ${name}`);
        const data = Buffer.from(await res.arrayBuffer());
        entries.push({ name, sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
      }
      return ok(entries);
    },
    lock: {
      parse: (request, packages) => (Array.isArray(packages) ? ok({ request: request as { names: string[] }, packages: packages as BlobEntry[] }) : fail('"packages" must be a list')),
      json: (request, packages) => ({ request, packages: packages.map((p) => ({ name: p.name, sha256: p.sha256, size: p.size })) }),
    },
    artifact: (e) => ({ name: e.name, version: '1', sha256: e.sha256, size: e.size, file: `${e.name}.blob`, where: e.name }),
    digest: (es) => formatDigest(sha256(canonicalJson(es.map((e) => [e.name, e.sha256])))) as Digest,
    files: (es) => ({ 'list.txt': es.map((e) => `${e.name}\n`).join('') }),
    locate: (vars, r) => {
      const repo = r.repo ?? vars['blob_mirror'];
      return repo ? ok((a, e) => `${repo}/${e.name}`) : fail(diagnostic('usage', 'no blob mirror', undefined, 'set --var blob_mirror=URL'));
    },
    async verify(fetched, ctx) {
      assert.deepEqual(ctx.request.names, ['one', 'two'], 'verify gets the stage request');
      assert.deepEqual(fetched.map((f) => f.entry.name), fetched.map((f) => f.artifact.name), 'and each artifact with its entry');
      calls.verified.push(...fetched.map((f) => f.artifact.name));
      const bad = fetched.filter((f) => f.artifact.name === calls.refuse);
      return bad.length ? fail(bad.map((f) => `${f.artifact.name}: bad signature`)) : ok(undefined);
    },
  };
}

test('a third format, unknown to the core: locked into imgmake.lock, keyed by its digest, fetched and verified', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-format-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const blobs = { one: randomBytes(3000), two: randomBytes(5000) };
  const server = createServer((req, res) => {
    const data = blobs[(req.url ?? '').slice(1) as keyof typeof blobs];
    if (!data) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': data.length }).end(data);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // A rules folder with one package rule, as a format's folder would bring.
  const rulesDir = join(dir, 'rules');
  mkdirSync(join(rulesDir, 'blob.install'), { recursive: true });
  writeFileSync(
    join(rulesDir, 'blob.install', 'rule.json'),
    JSON.stringify({ summary: 'copies blobs', lock: 'blob', inputs: { blobs: { description: 'from the lock', kinds: ['file'] } }, options: { type: 'object', properties: { names: { type: 'array', items: { type: 'string' } }, repo: { type: 'string' } } } }),
  );
  writeFileSync(join(rulesDir, 'blob.install', 'index.js'), 'export default (o, ctx) => ({ argv: ["/bin/sh", "-c", `cp ${ctx.inputs.blobs.path}/* .`] });\n');
  const rules = await loadRules([rulesDir]);
  const project = join(dir, 'project');
  mkdirSync(project);
  const yaml = (names: string) => `version: 1\npipelines:\n  os:\n    stages:\n      - name: blobs\n        rule: blob.install\n        options: { names: [${names}], repo: "${base}" }\ntargets:\n  os: { pipeline: os }\n`;
  writeFileSync(join(project, 'imgmake.yaml'), yaml('two, one'));

  const calls = { resolved: 0, verified: [] as string[] } as { resolved: number; verified: string[]; refuse?: string };
  const format = blobFormat(calls);
  const table: LockTable = { formats: new Map([['blob', format as unknown as PackageFormat]]), legacy: 'blob' };
  const lockOpts = { ...table, sandbox: bwrapSandbox, workDir: join(dir, 'lockwork'), say: () => undefined };
  const loadDef = async () => {
    const d = await load({ file: join(project, 'imgmake.yaml'), rules });
    assert.ok(d.ok, d.ok ? '' : JSON.stringify(d.error));
    return d.value;
  };

  // --locked with no lock: refused, naming the stage and the request in the format's words.
  const def0 = await loadDef();
  const refused = await attachLocks(def0, rules, { ...lockOpts, mode: 'read' });
  assert.ok(!refused.ok);
  assert.match(refused.error[0]!.message, /^imgmake\.lock has no lock for os\.blobs \(one two\)$/);

  const def = await loadDef();
  const locked = await attachLocks(def, rules, { ...lockOpts, mode: 'resolve' });
  assert.ok(locked.ok, locked.ok ? '' : locked.error[0]!.message);
  assert.deepEqual(locked.value, { resolved: 1, wrote: true });
  const text = readFileSync(join(project, 'imgmake.lock'), 'utf8');
  // The lock keeps the lock request: the names, not the repository's URL.
  assert.match(text, /"format": "blob",\n {6}"request": \{"names":\["one","two"\]\},/);
  const back = await readLocks(join(project, 'imgmake.lock'), table);
  assert.ok(back.ok);
  assert.equal(back.value[0]!.format, 'blob');

  // The stage carries the package input; its key holds the format's digest under the input's name.
  const stage = def.pipelines.get('os' as never)!.stages[0]!;
  const input = stage.inputs.find((i) => i.kind === 'packages');
  assert.ok(input && input.kind === 'packages');
  assert.equal(input.name, 'blobs');
  assert.deepEqual(input.files, { 'list.txt': 'one\ntwo\n' });
  const keys = await computeKeys(buildGraph(def, rules));
  const key = [...keys.values()][0]!;
  assert.deepEqual(key.object.inputs, { blobs: { packages: input.digest } });

  // A second load in read mode: no resolve, same key.
  const again = await loadDef();
  assert.ok((await attachLocks(again, rules, { ...lockOpts, mode: 'read' })).ok);
  assert.equal(calls.resolved, 1);
  assert.equal([...(await computeKeys(buildGraph(again, rules))).values()][0]!.key, key.key);

  // Fetched into a real cache, verified by the format's hook, by sha256.
  const cacheDir = join(dir, 'cache');
  const got = await fetchPackageInputs([stage], { formats: table.formats, vars: def.vars, cacheDir, sandbox: bwrapSandbox, workDir: join(dir, 'verify') });
  assert.ok(got.ok, got.ok ? '' : got.error);
  assert.deepEqual(readFileSync(got.value.get(input.artifacts.find((a) => a.name === 'one')!.sha256)!), blobs.one);
  assert.deepEqual(calls.verified.sort(), ['one', 'two']);

  // A verify failure names the artifact; nothing runs.
  calls.refuse = 'two';
  const refusedSig = await fetchPackageInputs([stage], { formats: table.formats, vars: def.vars, cacheDir, sandbox: bwrapSandbox, workDir: join(dir, 'verify') });
  assert.ok(!refusedSig.ok);
  assert.equal(refusedSig.error, 'verifying the blobs of os.blobs failed:\n  two: bad signature');

  // No mirror (a stage whose request names none): said once, with the format's hint, only
  // because something must be downloaded.
  const bareStage = { ...stage, inputs: [{ ...input, request: { names: ['one', 'two'] } }] };
  const bare = await fetchPackageInputs([bareStage], { formats: table.formats, vars: {}, cacheDir: join(dir, 'cache2'), sandbox: bwrapSandbox, workDir: join(dir, 'verify') });
  assert.ok(!bare.ok);
  assert.equal(bare.error, 'fetching packages failed: no blob mirror\nhint: set --var blob_mirror=URL');
  calls.refuse = undefined;
  assert.ok((await fetchPackageInputs([bareStage], { formats: table.formats, vars: {}, cacheDir, sandbox: bwrapSandbox, workDir: join(dir, 'verify') })).ok, 'all cached: no mirror needed');
});

test('a rule naming a format this imgmake does not know is a usage error at the stage', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-format-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'rules', 'pac.install'), { recursive: true });
  writeFileSync(join(dir, 'rules', 'pac.install', 'rule.json'), JSON.stringify({ summary: 's', lock: 'pacman', options: { type: 'object' } }));
  writeFileSync(join(dir, 'rules', 'pac.install', 'index.js'), 'export default () => ({ argv: ["true"] });\n');
  const rules = await loadRules([join(dir, 'rules')]);
  writeFileSync(join(dir, 'imgmake.yaml'), 'version: 1\npipelines:\n  os:\n    stages:\n      - rule: pac.install\ntargets:\n  os: { pipeline: os }\n');
  const def = await load({ file: join(dir, 'imgmake.yaml'), rules });
  assert.ok(def.ok);
  const r = await attachLocks(def.value, rules, { formats: new Map([['apt', apt as PackageFormat]]), legacy: 'apt', mode: 'read', sandbox: bwrapSandbox, workDir: dir, say: () => undefined });
  assert.ok(!r.ok);
  assert.equal(r.error[0]!.message, 'rule pac.install installs packages of format "pacman", which this imgmake does not know');
  assert.equal(r.error[0]!.loc?.line, 5);
});

test('apt: the digest of a locked set is the one key schema v1 always gave it (the Debian package stage keeps its key)', () => {
  const pkgs = [
    { name: 'hello', version: '2.10-3', architecture: 'amd64', priority: 'optional', section: 'devel', source: 'archive' as const, path: 'pool/main/h/hello/hello_2.10-3_amd64.deb', size: 56000, sha256: 'a'.repeat(64) },
    { name: 'base-files', version: '12.4+deb12u1', architecture: 'amd64', priority: 'required', section: 'admin', source: 'security' as const, path: 'pool/updates/main/b/base-files/base-files_12.4+deb12u1_amd64.deb', size: 70936, sha256: 'b'.repeat(64) },
  ];
  // Computed with src/key.ts's packagesDigest at 10d313b, before the package layer.
  assert.equal(apt.digest(pkgs), 'sha256:73edb1e0e6c097a75f5214a34b0f7ff04d0e4893cea03fb4c4e75d3adf93577a');
  assert.equal(apt.input, 'debs', 'the input name is part of the key object');
});
