/**
 * `build --with-manifest`: the written definition is self-contained (includes inlined,
 * variables substituted, `--var` included, project files and folders carried inline, a
 * literal `${` kept literal) and building it from a folder holding nothing else gives the same
 * keys (every stage cached) and a byte-identical image. The Debian case (a package stage and
 * its lock) is in sbom-debian.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imgmake, projectWith } from './helpers/cli.js';

const MAIN = `version: 1
include: [parts/common.yaml]
vars:
  greeting: hello
pipelines:
  rootfs:
    base: base
    stages:
      - name: copy
        rule: files.copy
        inputs:
          motd: { file: files/motd }
          tool: { file: files/tool.sh }
          site: { file: site }
        options:
          items:
            - { from: motd, to: /etc/motd }
            - { from: tool, to: /usr/local/bin/tool }
            - { from: site, to: /srv/www }
      - name: note
        rule: files.write
        options:
          files:
            - { path: /etc/note, content: "\${greeting} from \${place}; literal $\${HOME}\\n" }
  tarball:
    stages:
      - rule: archive.tar
        inputs:
          tree: { pipeline: rootfs }
        options: { filename: image.tar }
  unused:
    stages:
      - rule: files.mkdir
        inputs: {}
        options: { paths: [{ path: /x }] }
targets:
  image: { pipeline: tarball, export: [image.tar] }
`;

const COMMON = `version: 1
vars:
  place: nowhere
pipelines:
  base:
    stages:
      - rule: files.mkdir
        options: { paths: [{ path: /etc }, { path: /srv }] }
`;

test('build --with-manifest: the manifest alone, in another folder, builds the same keys and a byte-identical image', async (t) => {
  const p = await projectWith(MAIN);
  t.after(p.cleanup);
  await mkdir(join(p.dir, 'parts'));
  await writeFile(join(p.dir, 'parts', 'common.yaml'), COMMON);
  await writeFile(join(p.dir, 'files', 'tool.sh'), '#!/bin/sh\necho tool\n');
  await chmod(join(p.dir, 'files', 'tool.sh'), 0o750);
  await mkdir(join(p.dir, 'site', 'img'), { recursive: true });
  await writeFile(join(p.dir, 'site', 'index.html'), '<p>site</p>\n');
  await writeFile(join(p.dir, 'site', 'img', 'logo.bin'), Buffer.from([0, 1, 2, 255, 36, 123]));
  await symlink('img/logo.bin', join(p.dir, 'site', 'logo'));
  await chmod(join(p.dir, 'site', 'img'), 0o700);

  const args = ['-f', p.file, '--var', 'greeting=hi'];
  const built = await imgmake(['--json', ...args, 'build', 'image', '--with-manifest']);
  assert.equal(built.code, 0, built.stderr + built.stdout);
  const manifest = join(p.dir, 'out', 'image.manifest');
  assert.deepEqual(await readdir(manifest), ['imgmake.yaml'], 'no packages: no lock');
  const yaml = await readFile(join(manifest, 'imgmake.yaml'), 'utf8');
  assert.doesNotMatch(yaml, /include:|vars:|files\/motd|unused/, 'no include, no variable, no project path, no pipeline the target does not need');
  assert.match(yaml, /hi from nowhere; literal \$\$\{HOME\}/);

  // Only the manifest, in a folder of its own; the same cache.
  const elsewhere = await mkdtemp(join(tmpdir(), 'imgmake-manifest-'));
  t.after(() => rm(elsewhere, { recursive: true, force: true }));
  await cp(join(manifest, 'imgmake.yaml'), join(elsewhere, 'imgmake.yaml'));
  const again = ['-f', join(elsewhere, 'imgmake.yaml'), '--cache', join(p.dir, 'cache')];
  const keys = async (a: string[]) => {
    const r = await imgmake(['--json', ...a, 'plan', 'image']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return r.events.filter((e) => e.type === 'plan-stage').map((e) => `${e.node} ${e.key} ${e.status}`);
  };
  const original = await keys(args);
  assert.equal(original.length, 4);
  // The tarball's stage delivered its file to the project's out/ (src/deliver.ts): the other
  // folder has no out/image yet, so there it is the one stage to run.
  const elsewhereWants = original.map((l) => (l.startsWith('tarball.0 ') ? l.replace(/ cached$/, ' run') : l));
  assert.deepEqual(await keys(again), elsewhereWants, 'every stage has the key it has in the project, and is cached');
  // The inline files written out at load are checked each time: one edited there is written again.
  const inlineDir = join(elsewhere, '.imgmake', 'inline');
  for (const d of await readdir(inlineDir)) {
    const f = join(inlineDir, d, 'content');
    if ((await readFile(f).catch(() => undefined))?.toString().startsWith('#!/bin/sh')) await writeFile(f, 'tampered\n');
  }
  assert.deepEqual(await keys(again), elsewhereWants, 'a tampered inline copy is written again, not used');
  const rebuilt = await imgmake(['--json', ...again, 'build']);
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.deepEqual(await readFile(join(elsewhere, 'out', 'image', 'image.tar')), await readFile(join(p.dir, 'out', 'image', 'image.tar')));

  // And on a cold cache (anywhere): the same image, built from the manifest alone.
  const cold = await imgmake(['--json', '-f', join(elsewhere, 'imgmake.yaml'), '--cache', join(elsewhere, 'cache'), '--out', join(elsewhere, 'out2'), 'build']);
  assert.equal(cold.code, 0, cold.stderr + cold.stdout);
  assert.deepEqual(await readFile(join(elsewhere, 'out2', 'image', 'image.tar')), await readFile(join(p.dir, 'out', 'image', 'image.tar')));

  // A new image without --with-manifest: the old manifest, which described the old image, goes.
  const plain = await imgmake(['--json', '-f', p.file, '--var', 'greeting=yo', 'build', 'image']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual((await readdir(join(p.dir, 'out'))).filter((n) => !n.startsWith('.')), ['image']);
});

test('an inline input that is not well formed is an error at its place, exit 2', async (t) => {
  const p = await projectWith(`version: 1
pipelines:
  a:
    stages:
      - rule: files.copy
        inputs:
          motd: { inline: { type: file, mode: "0644", base64: "not base64!" } }
        options: { items: [{ from: motd, to: /etc/motd }] }
targets:
  a: { pipeline: a }
`);
  t.after(p.cleanup);
  const r = await imgmake(['-f', p.file, 'plan']);
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.match(r.stderr, /imgmake\.yaml:7:19: error: inline file: "base64" must be base64 text/);
});

test('a hostile inline folder cannot write through one of its own links onto the host: exit 2, nothing written', async (t) => {
  const victim = await mkdtemp(join(tmpdir(), 'imgmake-inline-victim-'));
  t.after(() => rm(victim, { recursive: true, force: true }));
  const p = await projectWith(`version: 1
pipelines:
  a:
    stages:
      - rule: files.copy
        inputs:
          site:
            inline:
              type: dir
              mode: "0755"
              entries:
                - { path: out, type: link, target: ${victim} }
                - { path: out/planted, type: file, mode: "0644", base64: "aGk=" }
        options: { items: [{ from: site, to: /srv/site }] }
targets:
  a: { pipeline: a }
`);
  t.after(p.cleanup);
  const r = await imgmake(['-f', p.file, 'plan']);
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.match(r.stderr, /imgmake\.yaml:\d+:\d+: error: .*"out\/planted" is inside "out", which is not a folder/);
  assert.deepEqual(await readdir(victim), [], 'nothing was written through the link');
});
