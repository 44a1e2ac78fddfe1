/**
 * disk.vmdk through the real sandbox: what qemu-img info and compare say about the VMDK, its
 * descriptor (its own file name, a content-derived CID), and byte-identical runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { SOURCE_DATE_EPOCH } from '../../src/key.js';
import { makeDisk, sha256File, T } from '../../test/helpers/disk-fixtures.js';
import { SET_CID } from './index.js';

function info(path: string): Record<string, any> {
  return JSON.parse(execFileSync('qemu-img', ['info', '--output=json', path], { encoding: 'utf8' })) as Record<string, any>;
}

/** The test disk with `mark` written in the root partition. */
function makeData(path: string, mark = 'some data'): void {
  makeDisk(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31) % 256)), 0, 1 << 20, 50 << 20);
  writeSync(fd, Buffer.from(mark), 0, mark.length, 60 << 20);
  closeSync(fd);
}

async function withInput(mark: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir('imgmake-vmdk-input-');
  try {
    makeData(join(t.dir, 'disk.raw'), mark);
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

/** The CID the rule derives: sha256 of the image with CID=00000000, first 8 hex digits. */
function expectedCid(bytes: Buffer): { cid: string; derived: string } {
  const text = bytes.subarray(0, 65536).toString('latin1');
  const m = /\nCID=([0-9a-f]{8})\n/.exec(text);
  assert.ok(m, 'a CID line in the descriptor');
  const zeroed = Buffer.from(bytes);
  zeroed.write('00000000', m.index + 5, 'latin1');
  return { cid: m[1]!, derived: createHash('sha256').update(zeroed).digest('hex').slice(0, 8) };
}

test('disk.raw becomes a streamOptimized VMDK with the same contents, its own name in the descriptor, a content-derived CID', T, async () => {
  await withInput('some data', async (dir) => {
    const digests: string[] = [];
    const cids: string[] = [];
    for (let i = 0; i < 2; i++) {
      await withRule('disk.vmdk', {}, { inputs: { tree: { kind: 'tree', path: dir } } }, (r) => {
        assertOk(r);
        assert.deepEqual(readdirSync(r.tree), ['disk.vmdk'], 'no scratch folder left');
        const p = join(r.tree, 'disk.vmdk');
        const i = info(p);
        assert.equal(i['format'], 'vmdk');
        assert.equal(i['virtual-size'], 144 * 1024 * 1024);
        assert.equal(i['format-specific'].data['create-type'], 'streamOptimized');
        assert.equal(i['format-specific'].data.extents[0].compressed, true);
        const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', join(dir, 'disk.raw'), p], { encoding: 'utf8' });
        assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
        const bytes = readFileSync(p);
        const desc = bytes.subarray(512, 2048).toString('latin1');
        assert.match(desc, /\nRW 294912 SPARSE "disk\.vmdk"\n/, 'the extent is the file itself, by its final name');
        assert.match(desc, /ddb\.adapterType = "ide"/);
        const { cid, derived } = expectedCid(bytes);
        assert.equal(cid, derived);
        assert.equal(i['format-specific'].data.cid, parseInt(cid, 16));
        cids.push(cid);
        const st = lstatSync(p);
        assert.equal(perms(st.mode), 0o644);
        assert.equal(st.mtimeMs, Number(SOURCE_DATE_EPOCH) * 1000);
        assert.match(r.log, new RegExp(`disk\\.vmdk: \\d+ bytes of streamOptimized VMDK \\(CID ${cid}\\) from 150994944 raw`));
        digests.push(sha256File(p));
      });
    }
    assert.equal(digests[0], digests[1], 'two runs give the same bytes');
  });
  await withInput('other data', async (dir) => {
    await withRule('disk.vmdk', { filename: 'vm.vmdk', adapter_type: 'lsilogic' }, { inputs: { tree: { kind: 'tree', path: dir } } }, (r) => {
      assertOk(r);
      const bytes = readFileSync(join(r.tree, 'vm.vmdk'));
      assert.match(bytes.subarray(512, 2048).toString('latin1'), /"vm\.vmdk"[^]*ddb\.adapterType = "lsilogic"/);
      const { cid, derived } = expectedCid(bytes);
      assert.equal(cid, derived, 'other contents, their own CID');
    });
  });
});

test('a missing raw image fails with what to do; bad options are refused by the schema', T, async () => {
  const t = tempDir('imgmake-vmdk-empty-');
  try {
    await withRule('disk.vmdk', {}, { inputs: { tree: { kind: 'tree', path: t.dir } } }, (r) => {
      assertFails(r, 'the tree input has no disk.raw (a raw disk image, made by disk.partition)');
    });
  } finally {
    t.cleanup();
  }
  assert.notDeepEqual(await schemaErrors('disk.vmdk', { filename: 'out/disk.vmdk' }), []);
  assert.notDeepEqual(await schemaErrors('disk.vmdk', { adapter_type: 'scsi' }), []);
});

test('the CID is set in a rewritten descriptor, whatever length qemu-img wrote (it drops leading zeros): 3 digits become 8', T, () => {
  const t = tempDir('imgmake-vmdk-cid-');
  try {
    makeData(join(t.dir, 'disk.raw'));
    const vmdk = join(t.dir, 'disk.vmdk');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', join(t.dir, 'disk.raw'), vmdk]);
    const run = (cid: string) => execFileSync('bash', ['-c', `set -e; die() { echo "$*" >&2; exit 1; }\n${SET_CID}\ncid_of "$1" "$2"`, 'cid', vmdk, cid], { encoding: 'utf8' });
    run('abc'); // what qemu-img writes for a random CID of 0x00000abc
    assert.match(readFileSync(vmdk).subarray(512, 2048).toString('latin1'), /\nCID=abc\nparentCID=/);
    assert.equal(info(vmdk)['format-specific'].data.cid, 0xabc);
    run('0123abcd');
    const desc = readFileSync(vmdk).subarray(512, 512 * 21).toString('latin1');
    assert.match(desc, /\nCID=0123abcd\nparentCID=/);
    assert.match(desc, /\n\0+$/, 'zeros after the text, to the end of its sectors');
    assert.equal(info(vmdk)['format-specific'].data.cid, 0x0123abcd);
    const cmp = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', join(t.dir, 'disk.raw'), vmdk], { encoding: 'utf8' });
    assert.equal(cmp.status, 0, cmp.stdout + cmp.stderr);
  } finally {
    t.cleanup();
  }
});
