/**
 * A rule's key covers the code that runs for it and nothing else (src/rule-code.ts,
 * docs/cache-key.md): editing a disk helper re-keys the disk stages of examples/debian-12 and
 * not its package stage; editing a rule re-keys its stages and what comes after them; editing a
 * test re-keys nothing; the compiled JavaScript, not the TypeScript, is what is keyed.
 *
 * Keys are computed in-process at the level that needs neither the network nor imgmake.lock:
 * load → graph → computeKeys. The lock only adds the package stage's `debs` input, which is the
 * same on both sides of every comparison here. Each test works on a copy of the rules and their
 * compiled mirror (`<tmp>/rules`, `<tmp>/dist/rules`, the package's own layout, so the compiled
 * modules' `new URL('../../../rules/…')` land in the copy); the real rules are never edited.
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildGraph, descendants, type BuildGraph } from '../src/graph.js';
import type { NodeId, RuleName } from '../src/ids.js';
import { changedFields, computeKeys, type Keys } from '../src/key.js';
import { load } from '../src/load/index.js';
import { moduleReferences, RuleCodeError, sourcedNames } from '../src/rule-code.js';
import { builtinRules, loadRules, type RulesRoot } from '../src/rule.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const debian = join(repo, 'examples', 'debian-12', 'imgmake.yaml');
const temps: string[] = [];
after(() => temps.forEach((t) => rmSync(t, { recursive: true, force: true })));

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'imgmake-rule-keys-'));
  temps.push(d);
  return d;
}

/** A copy of the built-in rules and their compiled code, laid out as in the package. */
function rulesCopy(): RulesRoot {
  const t = tmp();
  cpSync(builtinRules.dir, join(t, 'rules'), { recursive: true });
  cpSync(builtinRules.compiled!, join(t, 'dist', 'rules'), { recursive: true });
  return { dir: join(t, 'rules'), compiled: join(t, 'dist', 'rules') };
}

const MIRRORS = {
  debian_mirror: { value: 'http://mirror.invalid/debian', missing: '' },
  debian_security_mirror: { value: 'http://mirror.invalid/debian-security', missing: '' },
};

async function plan(root: RulesRoot, file = debian): Promise<{ graph: BuildGraph; keys: Keys }> {
  const rules = await loadRules([root]);
  const d = await load({ file, rules, hostDefaults: MIRRORS });
  if (!d.ok) assert.fail(d.error.map((e) => e.message).join('\n'));
  const graph = buildGraph(d.value, rules);
  return { graph, keys: await computeKeys(graph) };
}

function changed(a: Keys, b: Keys): NodeId[] {
  return [...a.keys()].filter((id) => a.get(id)!.key !== b.get(id)!.key).sort();
}

/** The stages using one of `rules`, and every stage after them. */
function usersAndAfter(g: BuildGraph, rules: string[]): NodeId[] {
  return [...descendants(g, g.order.filter((id) => rules.includes(g.stage(id).rule.name)))].sort();
}

const DISK_RULES = ['disk.partition', 'disk.ext4', 'disk.vfat', 'disk.convert', 'grub.efi', 'grub.bios', 'disk.iso'];

test('the built-in rules: disk rules carry rules/_lib/disk.sh, the others only what they use, no test and no TypeScript', async () => {
  const rules = await loadRules();
  const names = (r: string) => rules.get(r as RuleName)!.code.files.map((f) => `${f.root}:${f.path}`);
  assert.deepEqual(names('disk.partition'), [
    'compiled:_lib/disk.js',
    'compiled:_lib/sh.js',
    'compiled:_lib/size.js',
    'compiled:disk.partition/index.js',
    'source:_lib/disk.sh',
    'source:_lib/prelude.sh',
    'source:disk.partition/rule.json',
  ]);
  assert.deepEqual(names('files.mkdir'), ['compiled:_lib/sh.js', 'compiled:files.mkdir/index.js', 'source:_lib/prelude.sh', 'source:files.mkdir/rule.json']);
  assert.deepEqual(names('shell.run'), ['compiled:shell.run/index.js', 'source:shell.run/rule.json']);
  for (const r of rules.values()) {
    const files = names(r.name);
    assert.equal(files.includes('source:_lib/disk.sh'), DISK_RULES.includes(r.name), `${r.name}: ${files.join(' ')}`);
    assert.ok(!files.some((f) => /\.test\.|\.ts$|\.map$/.test(f)), `${r.name}: ${files.join(' ')}`);
  }
});

test('editing rules/_lib/disk.sh re-keys the disk stages of examples/debian-12 only, not the package stage', async () => {
  const root = rulesCopy();
  const before = await plan(root);
  appendFileSync(join(root.dir, '_lib', 'disk.sh'), '\n# a comment is a change of the code that runs\n');
  const after = await plan(root);
  const got = changed(before.keys, after.keys);
  assert.deepEqual(got, usersAndAfter(before.graph, DISK_RULES));
  assert.deepEqual(got, ['disk.bios', 'disk.esp', 'disk.partition', 'disk.root', 'esp.grub', 'qcow2.0']);
  assert.ok(before.keys.size > got.length * 3, `${before.keys.size} stages`);
  assert.deepEqual(changedFields(after.keys.get('disk.partition' as NodeId)!.fields, before.keys.get('disk.partition' as NodeId)!.fields), ['ruleCode']);
  assert.equal(after.keys.get('distro.packages' as NodeId)!.key, before.keys.get('distro.packages' as NodeId)!.key);
});

test("editing a rule's own file re-keys its stages and those after them; its compiled code is what counts", async () => {
  const root = rulesCopy();
  const base = await plan(root);
  const expected = usersAndAfter(base.graph, ['system.hostname']);
  assert.ok(expected.includes('os.hostname' as NodeId) && !expected.includes('distro.packages' as NodeId));

  const schema = join(root.dir, 'system.hostname', 'rule.json');
  writeFileSync(schema, readFileSync(schema, 'utf8').replace('"summary": "', '"summary": "Now: '));
  const schemaEdited = await plan(root);
  assert.deepEqual(changed(base.keys, schemaEdited.keys), expected);

  appendFileSync(join(root.compiled!, 'system.hostname', 'index.js'), '\n// recompiled\n');
  assert.deepEqual(changed(schemaEdited.keys, (await plan(root)).keys), expected);
});

test("editing a rule's tests, or what only tests import, re-keys nothing", async () => {
  const root = rulesCopy();
  const before = await plan(root);
  appendFileSync(join(root.dir, 'disk.partition', 'index.test.ts'), '\n// edited\n');
  appendFileSync(join(root.compiled!, 'disk.partition', 'index.test.js'), '\n// edited\n');
  writeFileSync(join(root.compiled!, 'disk.partition', 'index.test.js.map'), '{}');
  writeFileSync(join(root.dir, '_lib', 'fixtures.test.ts'), 'export const X = 1;\n');
  writeFileSync(join(root.compiled!, '_lib', 'only-tests-import-this.js'), 'export const X = 1;\n');
  assert.deepEqual(changed(before.keys, (await plan(root)).keys), []);
});

test('a stale build is keyed by the code that runs: a TypeScript edit re-keys nothing until it is compiled', async () => {
  const root = rulesCopy();
  const before = await plan(root);
  // The source changes, dist/ does not: the old JavaScript still runs, under the old key.
  appendFileSync(join(root.dir, '_lib', 'disk.ts'), '\nexport const NEW = 1;\n');
  appendFileSync(join(root.dir, 'system.hostname', 'index.ts'), '\n// edited, not compiled\n');
  const stale = await plan(root);
  assert.deepEqual(changed(before.keys, stale.keys), []);
  // "npx tsc": the compiled disk helper changes, so do the disk stages' keys.
  appendFileSync(join(root.compiled!, '_lib', 'disk.js'), '\nexport const NEW = 1;\n');
  assert.deepEqual(changed(stale.keys, (await plan(root)).keys), usersAndAfter(before.graph, DISK_RULES));
});

test('a rule whose compiled code is missing, or a shared import that is gone, fails with what to run', async () => {
  const root = rulesCopy();
  rmSync(join(root.compiled!, 'files.mkdir', 'index.js'));
  const rules = await loadRules([root]);
  assert.throws(() => rules.get('files.mkdir' as RuleName)!.digest, (e: Error) => {
    assert.ok(e instanceof RuleCodeError);
    assert.match(e.message, /^rule files\.mkdir has no code to run: .*dist\/rules\/files\.mkdir\/index\.js does not exist .*compile the rules with npx tsc -p \.$/);
    return true;
  });
  rmSync(join(root.compiled!, '_lib', 'sh.js'));
  assert.throws(() => (rules.get('files.write' as RuleName)!).digest, /rule files\.write: .*files\.write\/index\.js imports .*_lib\/sh\.js, which does not exist/);
});

/** A rules folder written in JavaScript (no compiled mirror), for what the built-in rules do not show. */
function jsRules(files: Record<string, string>): RulesRoot {
  const dir = tmp();
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return { dir };
}

const RULE_JSON = JSON.stringify({ summary: 'x', options: { type: 'object' } });

test('shell files sourced from rules/_lib are followed transitively; unsourced ones are not', async () => {
  const root = jsRules({
    'x.run/rule.json': RULE_JSON,
    'x.run/index.js': "const A = new URL('../_lib/a.sh', import.meta.url);\nexport default () => ({ argv: [A.pathname] });\n",
    '_lib/a.sh': '. "$RUN/b.sh"\nif true; then . ./c-is-not-here.sh; fi\n',
    '_lib/b.sh': 'source "$RUN/d.sh" && true\n',
    '_lib/d.sh': 'echo d\n',
    '_lib/unused.sh': 'echo unused\n',
  });
  const digest = async () => (await loadRules([root])).get('x.run' as RuleName)!;
  const rule = await digest();
  assert.deepEqual(
    rule.code.files.map((f) => `${f.path}(${f.via})`),
    ['_lib/a.sh(read)', '_lib/b.sh(source)', '_lib/d.sh(source)', 'x.run/index.js(own)', 'x.run/rule.json(own)'],
  );
  appendFileSync(join(root.dir, '_lib', 'unused.sh'), '# edited\n');
  assert.equal((await digest()).digest, rule.digest);
  appendFileSync(join(root.dir, '_lib', 'd.sh'), '# edited\n');
  assert.notEqual((await digest()).digest, rule.digest);
});

test('a computed path outside the rule\'s own folder is an error, not a file left out', async () => {
  const root = jsRules({
    'x.run/rule.json': RULE_JSON,
    'x.run/index.js': 'export default (o) => ({ argv: [new URL(`../_lib/${o.name}.sh`, import.meta.url).pathname] });\n',
    'y.run/rule.json': RULE_JSON,
    'y.run/index.js': 'export default (o) => ({ argv: [new URL(`./${o.name}.sh`, import.meta.url).pathname] });\n',
    'z.run/rule.json': RULE_JSON,
    'z.run/index.js': 'export default () => ({ argv: [import.meta.dirname + "/z.sh"] });\n',
  });
  const rules = await loadRules([root]);
  assert.throws(() => rules.get('x.run' as RuleName)!.digest, /rule x\.run: .*index\.js names a file imgmake cannot follow into the rule's key \(new URL\(`\.\.\/_lib\/\$\{o\.name\}\.sh`, import\.meta\.url\)\); name it with a string literal/);
  assert.match(rules.get('y.run' as RuleName)!.digest, /^sha256:/, 'a computed path in its own folder is covered by the folder');
  assert.throws(() => rules.get('z.run' as RuleName)!.digest, /rule z\.run: .*import\.meta outside new URL/);
});

test('module references: the import forms tsc emits, reads by literal URL, and bare specifiers left out', () => {
  const js = [
    "import { readFileSync } from 'node:fs';",
    "import Ajv from 'ajv';",
    'import {\n  a,\n  b as c,\n} from "./multi.js";',
    "export * from '../_lib/all.js';",
    "export { x } from './x.js';",
    "import './side-effect.js';",
    "const later = await import('./later.js');",
    "const SH = new URL('../../../rules/_lib/x.sh', import.meta.url);",
    '/** import { no } from \'./in-a-comment.js\' */',
  ].join('\n');
  const refs = moduleReferences('/p/dist/rules/a.b/index.js', js);
  assert.deepEqual(
    refs.map((r) => (r.kind === 'computed' ? `computed ${r.text}` : `${r.kind} ${r.path}`)).sort(),
    [
      'import /p/dist/rules/_lib/all.js',
      'import /p/dist/rules/a.b/later.js',
      'import /p/dist/rules/a.b/multi.js',
      'import /p/dist/rules/a.b/side-effect.js',
      'import /p/dist/rules/a.b/x.js',
      'read /p/rules/_lib/x.sh',
    ],
  );
  assert.deepEqual(sourcedNames('. /etc/os-release\nfoo; source "$RUN/a.sh"\n[ -e . ] && echo .\n'), ['os-release', 'a.sh']);
});
