/**
 * load's happy path: includes, variable precedence and typing, schema defaults, file inputs,
 * stage ids, positions. Errors are covered by the golden files of diagnostics.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Definition, InputDef } from '../src/definition.js';
import type { PipelineName } from '../src/ids.js';
import { load, type LoadOptions } from '../src/load/index.js';
import { loadRules } from '../src/rule.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const rules = await loadRules([join(repo, 'test', 'fixtures', 'rules')]);
const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** A project folder holding `files` (path → content; a path ending in `/` is a folder). */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgmake-load-'));
  temps.push(dir);
  for (const [path, content] of Object.entries(files)) {
    const abs = join(dir, path);
    if (path.endsWith('/')) mkdirSync(abs, { recursive: true });
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
  }
  return dir;
}

async function loadOk(dir: string, extra: Partial<LoadOptions> = {}): Promise<Definition> {
  const r = await load({ file: join(dir, 'imgmake.yaml'), rules, ...extra });
  if (!r.ok) assert.fail(`load failed:\n${r.error.map((d) => `${d.reason}: ${d.message}`).join('\n')}`);
  return r.value;
}

function pipeline(def: Definition, name: string) {
  const p = def.pipelines.get(name as PipelineName);
  assert.ok(p, `no pipeline ${name}`);
  return p;
}

const ROOT = `version: 1
include:
  - distro/distro.yaml
  - extra.yaml
vars:
  hostname: hello
  greeting: "Hello from \${hostname}"
  level: 9
  ver: 1.10
pipelines:
  rootfs:
    build: buildroot
    stages:
      - rule: files.mkdir
        options: { paths: [/etc] }
      - name: hostname
        rule: system.hostname
        options: { hostname: "\${hostname}" }
      - rule: files.copy
        inputs:
          motd: { file: files/motd }
          base: { pipeline: buildroot }
        options:
          items: [{ from: motd, to: "/etc/motd-v\${ver}" }, { from: base, to: "/opt/$\${literal}" }]
  tarball:
    stages:
      - rule: archive.tar
        inputs: { tree: { pipeline: rootfs } }
        options: { filename: "\${hostname}.tar", level: "\${level}" }
targets:
  hello:
    pipeline: tarball
    export: [hello.tar]
  whole:
    pipeline: rootfs
`;

const DISTRO = `vars:
  hostname: from-distro
  release: bookworm
  mirror: http://deb.example/\${release}
pipelines:
  buildroot:
    stages:
      - rule: files.copy
        inputs:
          skel: { file: skel }
        options: { items: [{ from: skel, to: /etc/skel }] }
`;

const EXTRA = `vars:
  release: trixie
`;

function example(): string {
  return project({
    'imgmake.yaml': ROOT,
    'distro/distro.yaml': DISTRO,
    'distro/skel/': '',
    'extra.yaml': EXTRA,
    'files/motd': 'Hello\n',
  });
}

test('files lists the root first, then includes in the order written', async () => {
  const dir = example();
  const def = await loadOk(dir);
  assert.equal(def.file, join(dir, 'imgmake.yaml'));
  assert.equal(def.dir, dir);
  assert.deepEqual(def.files, [join(dir, 'imgmake.yaml'), join(dir, 'distro/distro.yaml'), join(dir, 'extra.yaml')]);
});

test('pipelines come in merge order: included files first', async () => {
  const def = await loadOk(example());
  assert.deepEqual([...def.pipelines.keys()], ['buildroot', 'rootfs', 'tarball']);
  assert.deepEqual([...def.targets.keys()], ['hello', 'whole']);
});

test('variables: the including file wins, a later include wins over an earlier one, vars use vars', async () => {
  const def = await loadOk(example());
  assert.deepEqual(def.vars, {
    hostname: 'hello',
    release: 'trixie',
    mirror: 'http://deb.example/trixie',
    greeting: 'Hello from hello',
    level: '9',
    ver: '1.10',
  });
  assert.deepEqual(pipeline(def, 'rootfs').stages[1]!.options, { hostname: 'hello' });
});

test('--var overrides win over every file and keep the type of the variable they override', async () => {
  const def = await loadOk(example(), { vars: { hostname: 'cli', level: '3' } });
  assert.equal(def.vars['hostname'], 'cli');
  assert.equal(def.vars['greeting'], 'Hello from cli');
  const tar = pipeline(def, 'tarball').stages[0]!;
  assert.equal(tar.options['filename'], 'cli.tar');
  assert.equal(tar.options['level'], 3);
});

test('a value that is exactly ${name} takes the variable’s type; embedded ones are its text', async () => {
  const def = await loadOk(example());
  const tar = pipeline(def, 'tarball').stages[0]!;
  assert.equal(tar.options['level'], 9);
  const copy = pipeline(def, 'rootfs').stages[2]!;
  assert.deepEqual(copy.options['items'], [
    { from: 'motd', to: '/etc/motd-v1.10' },
    { from: 'base', to: '/opt/${literal}' },
  ]);
});

test('schema defaults are filled into the options', async () => {
  const def = await loadOk(example());
  assert.deepEqual(pipeline(def, 'rootfs').stages[0]!.options, { paths: ['/etc'], mode: '0755' });
  assert.deepEqual(pipeline(def, 'tarball').stages[0]!.options, { filename: 'hello.tar', level: 9, compression: 'none' });
});

test('stage ids are names when given, else the index', async () => {
  const def = await loadOk(example());
  const stages = pipeline(def, 'rootfs').stages;
  assert.deepEqual(
    stages.map((s) => [s.index, s.id, s.rule]),
    [
      [0, '0', 'files.mkdir'],
      [1, 'hostname', 'system.hostname'],
      [2, '2', 'files.copy'],
    ],
  );
  assert.ok(stages.every((s) => s.pipeline === 'rootfs'));
});

test('file inputs resolve against the file that names them; rel is from the root folder', async () => {
  const dir = example();
  const def = await loadOk(dir);
  const copy = pipeline(def, 'rootfs').stages[2]!;
  const byName = new Map<string, InputDef>(copy.inputs.map((i) => [i.name, i]));
  assert.deepEqual(
    { ...byName.get('motd')!, loc: undefined },
    { name: 'motd', kind: 'file', path: join(dir, 'files/motd'), root: dir, rel: 'files/motd', loc: undefined },
  );
  assert.deepEqual({ ...byName.get('base')!, loc: undefined }, { name: 'base', kind: 'pipeline', pipeline: 'buildroot', loc: undefined });
  const skel = pipeline(def, 'buildroot').stages[0]!.inputs[0]!;
  assert.equal(skel.kind, 'file');
  if (skel.kind === 'file') {
    assert.equal(skel.path, join(dir, 'distro/skel'));
    assert.equal(skel.rel, 'distro/skel');
  }
});

test('every value keeps where it was written', async () => {
  const dir = example();
  const def = await loadOk(dir);
  const root = join(dir, 'imgmake.yaml');
  const rootfs = pipeline(def, 'rootfs');
  assert.deepEqual(rootfs.loc, { file: root, line: 11, col: 3, endLine: 11, endCol: 9 });
  assert.deepEqual(rootfs.build, { pipeline: 'buildroot', loc: { file: root, line: 12, col: 12, endLine: 12, endCol: 21 } });
  const hostname = rootfs.stages[1]!;
  assert.deepEqual(hostname.ruleLoc, { file: root, line: 17, col: 15, endLine: 17, endCol: 30 });
  assert.deepEqual(hostname.optionLocs, { hostname: { file: root, line: 18, col: 20, endLine: 18, endCol: 43 } });
  assert.equal(hostname.loc.line, 16);
  const motd = rootfs.stages[2]!.inputs[0]!;
  assert.deepEqual(motd.loc, { file: root, line: 21, col: 11, endLine: 21, endCol: 37 });
  const buildroot = pipeline(def, 'buildroot');
  assert.equal(buildroot.loc.file, join(dir, 'distro/distro.yaml'));
  assert.equal(buildroot.loc.line, 6);
  const hello = def.targets.get('hello')!;
  assert.deepEqual(hello, { name: 'hello', pipeline: 'tarball', export: ['hello.tar'], loc: { file: root, line: 31, col: 3, endLine: 31, endCol: 8 } });
  assert.deepEqual(def.targets.get('whole')!.export, []);
});

test('a file included twice through different files is read once', async () => {
  const dir = project({
    'imgmake.yaml': 'version: 1\ninclude: [a.yaml, b.yaml]\n',
    'a.yaml': 'include: [common.yaml]\nvars: { who: a }\n',
    'b.yaml': 'include: [common.yaml]\n',
    'common.yaml': `pipelines:\n  base:\n    stages:\n      - rule: files.mkdir\n        options: { paths: ["/\${who}"] }\n`,
  });
  const def = await loadOk(dir);
  assert.deepEqual(
    def.files.map((f) => f.slice(dir.length + 1)),
    ['imgmake.yaml', 'a.yaml', 'common.yaml', 'b.yaml'],
  );
  assert.deepEqual(pipeline(def, 'base').stages[0]!.options['paths'], ['/a']);
});

test('a stage without options validates {} (and gets its defaults); aliases are followed', async () => {
  const dir = project({
    'imgmake.yaml': `version: 1
pipelines:
  a:
    stages:
      - rule: files.mkdir
        options: &dirs { paths: [/srv], mode: "0700" }
      - rule: files.mkdir
        options: *dirs
  b:
    stages:
      - rule: files.copy
        options: { items: [] }
`,
  });
  const def = await loadOk(dir);
  const [first, second] = pipeline(def, 'a').stages;
  assert.deepEqual(first!.options, { paths: ['/srv'], mode: '0700' });
  assert.deepEqual(second!.options, { paths: ['/srv'], mode: '0700' });
  assert.notEqual(first!.options, second!.options);
  assert.deepEqual(pipeline(def, 'b').stages[0]!.inputs, []);
});

test('load fails with every diagnostic, sorted by file then position', async () => {
  const dir = project({
    'imgmake.yaml': `version: 1
include: [more.yaml]
pipelines:
  a:
    stages:
      - rule: nope.nope
      - rule: files.mkdir
        options: { paths: [/x], extra: 1 }
`,
    'more.yaml': 'pipelines:\n  b:\n    build: zzz\n    stages: [{ rule: files.mkdir, options: { paths: [/] } }]\n',
  });
  const r = await load({ file: join(dir, 'imgmake.yaml'), rules });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(
    r.error.map((d) => [d.reason, d.loc?.file.slice(dir.length + 1), d.loc?.line, d.loc?.col]),
    [
      ['unknown-rule', 'imgmake.yaml', 6, 15],
      ['invalid-options', 'imgmake.yaml', 8, 33],
      ['unknown-pipeline', 'more.yaml', 3, 12],
    ],
  );
});

test('host defaults: usable undeclared; a file variable, then --var, win over them; none on this host is a positioned error', async () => {
  const yaml = (vars: string) => `version: 1
${vars}pipelines:
  p:
    stages:
      - rule: system.hostname
        options: { hostname: "\${debian_mirror}" }
targets: {}
`;
  const hostDefaults = { debian_mirror: { value: 'from-host', missing: 'set it with --var debian_mirror=URL' } };
  const hostname = (def: Definition) => pipeline(def, 'p').stages[0]!.options['hostname'];
  assert.equal(hostname(await loadOk(project({ 'imgmake.yaml': yaml('') }), { hostDefaults })), 'from-host');
  const pinned = project({ 'imgmake.yaml': yaml('vars:\n  debian_mirror: pinned\n') });
  assert.equal(hostname(await loadOk(pinned, { hostDefaults })), 'pinned');
  assert.equal(hostname(await loadOk(pinned, { hostDefaults, vars: { debian_mirror: 'flag' } })), 'flag');

  const dir = project({ 'imgmake.yaml': yaml('') });
  const r = await load({ file: join(dir, 'imgmake.yaml'), rules, hostDefaults: { debian_mirror: { value: undefined, missing: 'set it with --var debian_mirror=URL' } } });
  assert.ok(!r.ok);
  assert.equal(r.error.length, 1);
  assert.equal(r.error[0]!.message, 'variable "debian_mirror" has no value on this host');
  assert.equal(r.error[0]!.hint, 'set it with --var debian_mirror=URL');
  assert.equal(r.error[0]!.loc?.line, 6);
});

test('hostDefaults: debian_mirror and debian_security_mirror from the apt sources of a root; none without them', async () => {
  const { hostDefaults } = await import('../src/cli/context.js');
  const fixtures = join(repo, 'test', 'fixtures', 'apt-sources');
  const d = await hostDefaults(join(fixtures, 'deb822'));
  assert.match(d['debian_mirror']!.value!, /^https?:\/\/[^/]+.*\/debian$/);
  assert.match(d['debian_security_mirror']!.value!, /\/debian-security$/);
  const none = await hostDefaults(join(fixtures, 'no-apt'));
  assert.equal(none['debian_mirror']!.value, undefined);
  assert.match(none['debian_mirror']!.missing, /--var debian_mirror=URL, or IMGMAKE_VAR_debian_mirror=URL/);
});
