/**
 * Keys are pure functions of the definition, the rule code and project file contents: each
 * field changes exactly the keys it should, and nothing else (paths, mtimes, stage names) does.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildGraph } from '../src/graph.js';
import type { NodeId } from '../src/ids.js';
import { canonicalJson, changedFields, computeKeys, digestPath } from '../src/key.js';
import { load } from '../src/load/index.js';
import { loadRules } from '../src/rule.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtureRules = join(repo, 'test', 'fixtures', 'rules');
const temps: string[] = [];
after(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'imgmake-key-'));
  temps.push(d);
  return d;
}

const DEF = (hostname: string, mode?: string) => `version: 1
pipelines:
  rootfs:
    stages:
      - name: dirs
        rule: files.mkdir
        options: { paths: [/etc]${mode ? `, mode: "${mode}"` : ''} }
      - name: motd
        rule: files.copy
        inputs: { motd: { file: files/motd } }
        options: { items: [{ from: motd, to: /etc/motd }] }
      - name: hostname
        rule: system.hostname
        options: { hostname: ${hostname} }
  tarball:
    stages:
      - rule: archive.tar
        inputs: { tree: { pipeline: rootfs } }
        options: { filename: t.tar }
targets:
  t: { pipeline: tarball }
`;

async function keysOf(dir: string, def: string, rulesDir = fixtureRules): Promise<Map<NodeId, { key: string; fields: Record<string, string> }>> {
  writeFileSync(join(dir, 'imgmake.yaml'), def);
  const rules = await loadRules([rulesDir]);
  const d = await load({ file: join(dir, 'imgmake.yaml'), rules });
  if (!d.ok) assert.fail(d.error.map((e) => e.message).join('\n'));
  return computeKeys(buildGraph(d.value, rules));
}

function project(): string {
  const dir = tmp();
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'files', 'motd'), 'hello\n');
  return dir;
}

const ids = ['rootfs.dirs', 'rootfs.motd', 'rootfs.hostname', 'tarball.0'] as NodeId[];
function differing(a: Map<NodeId, { key: string }>, b: Map<NodeId, { key: string }>): string[] {
  return ids.filter((id) => a.get(id)!.key !== b.get(id)!.key);
}

test('canonical JSON sorts keys at every level and separates values', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } }), '{"a":{"c":null,"d":[1,"x"]},"b":1}');
  assert.notEqual(canonicalJson(['ab', 'c']), canonicalJson(['a', 'bc']));
});

test('same definition in another folder: same keys (no paths in keys)', async () => {
  const a = await keysOf(project(), DEF('web'));
  const b = await keysOf(project(), DEF('web'));
  assert.deepEqual(differing(a, b), []);
  assert.match(a.get(ids[0]!)!.key, /^[0-9a-f]{64}$/);
});

test('an option changes its stage and everything downstream, and names the field', async () => {
  const dir = project();
  const a = await keysOf(dir, DEF('web'));
  const b = await keysOf(dir, DEF('db'));
  assert.deepEqual(differing(a, b), ['rootfs.hostname', 'tarball.0']);
  assert.deepEqual(changedFields(b.get(ids[2]!)!.fields, a.get(ids[2]!)!.fields), ['options.hostname']);
  assert.deepEqual(changedFields(b.get(ids[3]!)!.fields, a.get(ids[3]!)!.fields), ['inputs.tree']);
});

test('a default written out gives the same key as a default left out', async () => {
  const dir = project();
  assert.deepEqual(differing(await keysOf(dir, DEF('web')), await keysOf(dir, DEF('web', '0755'))), []);
  assert.deepEqual(differing(await keysOf(dir, DEF('web')), await keysOf(dir, DEF('web', '0700'))), ids);
});

test('a project file: content changes the key, mtime does not', async () => {
  const dir = project();
  const a = await keysOf(dir, DEF('web'));
  utimesSync(join(dir, 'files', 'motd'), new Date(2001, 1, 1), new Date(2001, 1, 1));
  assert.deepEqual(differing(a, await keysOf(dir, DEF('web'))), []);
  writeFileSync(join(dir, 'files', 'motd'), 'changed\n');
  const c = await keysOf(dir, DEF('web'));
  assert.deepEqual(differing(a, c), ['rootfs.motd', 'rootfs.hostname', 'tarball.0']);
  assert.deepEqual(changedFields(c.get(ids[1]!)!.fields, a.get(ids[1]!)!.fields), ['inputs.motd']);
});

test('directory digests cover names, modes and link targets, not mtimes', async () => {
  const d = tmp();
  mkdirSync(join(d, 'x'));
  writeFileSync(join(d, 'x', 'a'), '1');
  const first = await digestPath(join(d, 'x'));
  utimesSync(join(d, 'x', 'a'), new Date(2000, 1, 1), new Date(2000, 1, 1));
  assert.equal(await digestPath(join(d, 'x')), first);
  const { chmodSync, symlinkSync, renameSync } = await import('node:fs');
  chmodSync(join(d, 'x', 'a'), 0o755);
  const moded = await digestPath(join(d, 'x'));
  assert.notEqual(moded, first);
  symlinkSync('a', join(d, 'x', 'l'));
  const linked = await digestPath(join(d, 'x'));
  assert.notEqual(linked, moded);
  renameSync(join(d, 'x', 'a'), join(d, 'x', 'b'));
  assert.notEqual(await digestPath(join(d, 'x')), linked);
});

test("editing a rule's code changes the keys of its stages and downstream", async () => {
  const dir = project();
  const rulesCopy = tmp();
  cpSync(fixtureRules, rulesCopy, { recursive: true });
  const a = await keysOf(dir, DEF('web'), rulesCopy);
  const schema = join(rulesCopy, 'files.copy', 'rule.json');
  writeFileSync(schema, readFileSync(schema, 'utf8').replace('"summary": "', '"summary": "Now: '));
  const b = await keysOf(dir, DEF('web'), rulesCopy);
  assert.deepEqual(differing(a, b), ['rootfs.motd', 'rootfs.hostname', 'tarball.0']);
  assert.deepEqual(changedFields(b.get(ids[1]!)!.fields, a.get(ids[1]!)!.fields), ['ruleCode']);
});
