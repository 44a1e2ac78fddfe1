/**
 * An rpm.install stage's cache key leaves its repositories' URLs out, as the apt stage's leaves
 * Debian's mirror out (a variable, never an option): the lock's digest pins what is installed,
 * so the same definition built against another mirror (another --var) is the cached tree.
 * Everything else of the options still counts. Real rules, the real rpm format, a real
 * imgmake.lock read by attachLocks (no resolving: nothing here needs the network).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGraph } from '../src/graph.js';
import { computeKeys } from '../src/key.js';
import { load } from '../src/load/index.js';
import { attachLocks } from '../src/packages/index.js';
import { lockTable, packageFormats } from '../src/packages/formats.js';

const LOCK_TABLE = lockTable(await packageFormats());
import { keyOptionsOf } from '../src/packages/rpm/index.js';
import { loadRules } from '../src/rule.js';
import { bwrapSandbox } from '../src/sandbox/run.js';
import { repoRoot } from './helpers/cli.js';

const definition = (o: { baseurl: string; gpgkey: string; dbpath?: string }) => `version: 1
vars:
  base: "${o.baseurl}"
pipelines:
  os:
    stages:
      - name: packages
        rule: rpm.install
        options:
          repos:
            - { id: fedora, baseurl: "\${base}", gpgkey: ["${o.gpgkey}"] }
          packages: [bash]
          releasever: "40"${o.dbpath ? `\n          dbpath: ${o.dbpath}` : ''}
      - name: motd
        rule: files.write
        options: { files: [{ path: /etc/motd, content: hi }] }
targets:
  os: { pipeline: os }
`;

const lock = (sha: string) => `${JSON.stringify(
  {
    version: 2,
    locks: [
      {
        format: 'rpm',
        request: { repos: [{ id: 'fedora', gpgcheck: true, repo_gpgcheck: false }], packages: ['bash'], arch: 'x86_64', releasever: '40' },
        packages: [{ name: 'bash', epoch: 0, version: '5.2.26', release: '3.fc40', arch: 'x86_64', repo: 'fedora', location: 'Packages/b/bash-5.2.26-3.fc40.x86_64.rpm', size: 1800000, sha256: sha }],
      },
    ],
  },
  null,
  2,
)}\n`;

test('keyOptionsOf: the repositories without baseurl, metalink, mirrorlist and gpgkey; everything else kept', () => {
  const o = { repos: [{ id: 'f', baseurl: 'http://127.0.0.1:1/', metalink: 'http://127.0.0.1:2/', mirrorlist: 'http://127.0.0.1:3/', gpgkey: ['http://127.0.0.1:4/k'], gpgcheck: false, repo_gpgcheck: true }], packages: ['bash'], dbpath: '/var/lib/rpm' };
  assert.deepEqual(keyOptionsOf(o), { repos: [{ id: 'f', gpgcheck: false, repo_gpgcheck: true }], packages: ['bash'], dbpath: '/var/lib/rpm' });
  assert.equal(o.repos[0]!.baseurl, 'http://127.0.0.1:1/', 'the options themselves are untouched (the rule still gets them)');
});

test('the rpm stage\'s key: the same for another mirror or key URL; another option or locked package changes it and what follows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-rpm-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rules = await loadRules([join(repoRoot, 'rules')]);
  const keysOf = async (yaml: string, sha = 'a'.repeat(64)) => {
    writeFileSync(join(dir, 'imgmake.yaml'), yaml);
    writeFileSync(join(dir, 'imgmake.lock'), lock(sha));
    const def = await load({ file: join(dir, 'imgmake.yaml'), rules });
    assert.ok(def.ok, def.ok ? '' : JSON.stringify(def.error));
    const locked = await attachLocks(def.value, rules, { ...LOCK_TABLE, mode: 'read', sandbox: bwrapSandbox, workDir: join(dir, 'lock'), say: () => undefined });
    assert.ok(locked.ok, locked.ok ? '' : locked.error[0]!.message);
    const keys = await computeKeys(buildGraph(def.value, rules));
    const of = (id: string) => [...keys.entries()].find(([k]) => k === id)![1];
    return { packages: of('os.packages'), motd: of('os.motd') };
  };

  const one = await keysOf(definition({ baseurl: 'http://127.0.0.1:8080/fedora/', gpgkey: 'http://127.0.0.1:8080/key' }));
  assert.deepEqual(one.packages.object.options, { repos: [{ id: 'fedora', gpgcheck: true, repo_gpgcheck: false }], packages: ['bash'], releasever: '40', arch: 'x86_64', dbpath: '/var/lib/rpm' });
  const mirror = await keysOf(definition({ baseurl: 'http://127.0.0.1:9090/other/', gpgkey: 'http://127.0.0.1:9090/key' }));
  assert.equal(mirror.packages.key, one.packages.key, 'another mirror: the cached tree');
  assert.equal(mirror.motd.key, one.motd.key);

  const dbpath = await keysOf(definition({ baseurl: 'http://127.0.0.1:8080/fedora/', gpgkey: 'http://127.0.0.1:8080/key', dbpath: '/usr/lib/sysimage/rpm' }));
  assert.notEqual(dbpath.packages.key, one.packages.key, 'an option the rule reads still counts');
  assert.notEqual(dbpath.motd.key, one.motd.key);
  assert.notEqual(dbpath.packages.fields['options.dbpath'], one.packages.fields['options.dbpath'], 'and plan names it');

  const other = await keysOf(definition({ baseurl: 'http://127.0.0.1:8080/fedora/', gpgkey: 'http://127.0.0.1:8080/key' }), 'b'.repeat(64));
  assert.notEqual(other.packages.key, one.packages.key, 'another locked package: the stage runs again');
  assert.notEqual(other.packages.fields['inputs.rpms'], one.packages.fields['inputs.rpms']);
});
