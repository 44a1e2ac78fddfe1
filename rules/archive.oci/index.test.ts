/**
 * archive.oci through the real sandbox, read the way its consumers read it: skopeo inspects the
 * archive (config, labels, created time), umoci unpacks it (and podman runs it, where this
 * machine's cgroups let it: see the diagnostic) and /etc/os-release is the tree's,
 * the kernel and bootloader files are left out, and two copies of a tree made differently give
 * the same bytes (the same image digest).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assertOk, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { sha256File } from '../../test/helpers/disk-fixtures.js';
import { documents } from './index.js';

const T = { timeout: 180_000 };
export const OS_RELEASE = 'PRETTY_NAME="imgmake test tree"\nID=imgmake-test\n';

/** A runnable tree (a static busybox), an os-release, a kernel, modules and a device node to leave out. */
export function makeTree(dir: string, time: Date): void {
  const file = (rel: string, content: string | Buffer, mode = 0o644): void => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
    chmodSync(join(dir, rel), mode);
  };
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const tool of ['sh', 'cat']) symlinkSync('busybox', join(dir, 'bin', tool));
  file('etc/os-release', OS_RELEASE);
  file('boot/vmlinuz-6.1.0', 'kernel');
  file('usr/lib/modules/6.1.0/kernel/x.ko', 'module');
  symlinkSync('boot/vmlinuz-6.1.0', join(dir, 'vmlinuz'));
  mkdirSync(join(dir, 'dev'));
  execFileSync('mknod', [join(dir, 'dev/null'), 'c', '1', '3']);
  for (const d of ['proc', 'sys', 'tmp']) mkdirSync(join(dir, d));
  const touch = (rel: string): void => {
    const p = join(dir, rel);
    try { utimesSync(p, time, time); } catch { /* a symlink */ }
    try { for (const n of readdirSync(p)) touch(join(rel, n)); } catch { /* not a directory */ }
  };
  touch('.');
}

const OPTIONS = { cmd: ['/bin/cat', '/etc/os-release'], labels: { 'org.opencontainers.image.title': 'test', 'a.first': 'yes' }, env: ['PATH=/bin', 'GREETING=hi'] };

function skopeoInspect(archive: string, config = false): Record<string, any> {
  return JSON.parse(execFileSync('skopeo', ['inspect', ...(config ? ['--config'] : []), `oci-archive:${archive}`], { encoding: 'utf8' })) as Record<string, any>;
}

test('an OCI archive skopeo reads and umoci unpacks (podman runs it where it can); no kernel, modules or devices; the same bytes from a tree made otherwise', T, async (t) => {
  const dir = tempDir('imgmake-oci-input-');
  t.after(dir.cleanup);
  makeTree(join(dir.dir, 'one'), new Date('2024-01-02T03:04:05Z'));
  makeTree(join(dir.dir, 'two'), new Date('2019-09-09T09:09:09Z'));
  const digests: string[] = [];
  for (const copy of ['one', 'two']) {
    await withRule('archive.oci', OPTIONS, { inputs: { tree: { kind: 'tree', path: join(dir.dir, copy) } } }, (r) => {
      assertOk(r);
      assert.deepEqual(readdirSync(r.tree), ['image.oci.tar']);
      const archive = join(r.tree, 'image.oci.tar');
      const members = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).trim().split('\n');
      assert.deepEqual(members.filter((m) => !m.startsWith('blobs/sha256/')), ['oci-layout', 'index.json', 'blobs/']);
      const inspect = skopeoInspect(archive);
      assert.equal(inspect['Created'], '1980-01-01T00:00:00Z', 'created: SOURCE_DATE_EPOCH');
      assert.equal(inspect['Architecture'], 'amd64');
      assert.equal(inspect['Os'], 'linux');
      assert.deepEqual(inspect['Labels'], { 'a.first': 'yes', 'org.opencontainers.image.title': 'test' });
      assert.deepEqual(inspect['Env'], ['PATH=/bin', 'GREETING=hi']);
      assert.equal(inspect['Layers'].length, 1);
      const config = skopeoInspect(archive, true);
      assert.deepEqual(config['config']['Cmd'], ['/bin/cat', '/etc/os-release']);
      assert.equal(config['rootfs']['diff_ids'].length, 1);
      // The layer: the tree without what only a booted machine needs.
      const x = tempDir('imgmake-oci-layer-');
      try {
        const layout = join(x.dir, 'layout');
        mkdirSync(layout);
        execFileSync('tar', ['-C', layout, '-xf', archive]);
        const layer = join(layout, 'blobs', inspect['Layers'][0].replace(':', '/'));
        const listed = execFileSync('tar', ['-tzf', layer], { encoding: 'utf8' }).trim().split('\n');
        assert.ok(listed.includes('./etc/os-release') && listed.includes('./bin/busybox'), listed.join(' '));
        for (const gone of ['./boot/vmlinuz-6.1.0', './usr/lib/modules/6.1.0/kernel/x.ko', './vmlinuz', './dev/null']) assert.ok(!listed.includes(gone), `${gone} left out`);
        assert.ok(listed.includes('./boot/') && listed.includes('./dev/'), 'the directories themselves stay');
      } finally {
        x.cleanup();
      }
      digests.push(sha256File(archive));
      if (copy === 'one') {
        // umoci reads the layout as any OCI tool would and unpacks the image's root filesystem.
        const u = tempDir('imgmake-oci-umoci-');
        try {
          execFileSync('tar', ['-C', u.dir, '-xf', archive]);
          execFileSync('umoci', ['unpack', '--image', `${u.dir}:latest`, join(u.dir, 'bundle')], { stdio: 'pipe' });
          assert.equal(readFileSync(join(u.dir, 'bundle', 'rootfs', 'etc', 'os-release'), 'utf8'), OS_RELEASE);
          const spec = JSON.parse(readFileSync(join(u.dir, 'bundle', 'config.json'), 'utf8'));
          assert.deepEqual(spec.process.args, ['/bin/cat', '/etc/os-release']);
        } finally {
          u.cleanup();
        }
        // podman runs it where it can: limits within ours (root here lacks CAP_SYS_RESOURCE).
        const run = spawnSync('podman', ['run', '--rm', '--network=none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1000:1000', `oci-archive:${archive}`], { encoding: 'utf8', timeout: 120_000 });
        if (run.status !== 0 && /cgroups in hybrid mode not supported/.test(run.stderr)) {
          // This machine mounts cgroup v1 controllers beside a cgroup2 tree (hybrid), which
          // crun refuses; changing it is host-global. umoci above read the same image.
          t.diagnostic(`podman cannot run containers here: ${run.stderr.trim().split('\n').at(-1)}`);
        } else {
          assert.equal(run.status, 0, run.stderr);
          assert.equal(run.stdout, OS_RELEASE, 'podman runs the image: its CMD prints the tree\'s /etc/os-release');
        }
      }
    });
  }
  assert.equal(digests[0], digests[1], 'two copies of a tree, other mtimes: the same archive');
});

test('the documents are fixed JSON: sizes as numbers, labels sorted; the schema refuses bad names', async () => {
  const d = documents({ filename: 'x', tag: 'v1', exclude: [], entrypoint: ['/e'], cmd: [], env: [], workdir: '/', user: '', labels: { b: '2', a: '1' }, architecture: 'amd64', compression: 'zstd' });
  assert.match(d.manifest, /"size":@@CONFIG_SIZE@@/);
  assert.match(d.manifest, /"application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd"/);
  assert.match(d.config, /"Labels":\{"a":"1","b":"2"\}/);
  assert.match(d.config, /"Entrypoint":\["\/e"\]/);
  assert.doesNotMatch(d.config, /"Cmd"|"User"/);
  assert.match(d.index, /"org\.opencontainers\.image\.ref\.name":"v1"/);
  assert.notDeepEqual(await schemaErrors('archive.oci', { tag: 'a b' }), []);
  assert.notDeepEqual(await schemaErrors('archive.oci', { env: ['no equals'] }), []);
  assert.notDeepEqual(await schemaErrors('archive.oci', { exclude: ['boot'] }), []);
});
