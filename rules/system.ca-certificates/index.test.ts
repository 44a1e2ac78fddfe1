/**
 * system.ca-certificates through the real sandbox, chrooted into a Debian root made from the
 * host's own /usr and trust store (test/helpers/host-root.ts): the tree's update-ca-certificates
 * puts each certificate into the bundle and links it by hash, the tree's openssl then trusts a
 * certificate it signed, and a second run gives the same bundle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, schemaErrors, tempDir, withRule } from '../../test/helpers/rule-harness.js';
import { hostRoot } from '../../test/helpers/host-root.js';
import { certFile } from './index.js';

const T = { timeout: 120_000 };

/** A throw-away CA (its key only in a temp dir) and a leaf certificate it signed. */
function testCA(cn: string): { ca: string; leaf: string; cleanup: () => void } {
  const d = tempDir('imgmake-ca-test-');
  const o = (...a: string[]) => execFileSync('openssl', a, { cwd: d.dir, stdio: 'pipe' });
  o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', `/CN=${cn}`, '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf.example');
  o('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1');
  return { ca: readFileSync(join(d.dir, 'ca.pem'), 'utf8'), leaf: join(d.dir, 'leaf.pem'), cleanup: d.cleanup };
}

test('each certificate joins the bundle and is trusted by the tree\'s openssl; the same bundle twice', T, async () => {
  const a = testCA('imgmake test CA one');
  const b = testCA('imgmake test CA two');
  const bundles: string[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const root = hostRoot();
      try {
        // Three of the distribution's certificates instead of all (the rehash of ~140 takes long).
        const conf = join(root.tree, 'etc/ca-certificates.conf');
        writeFileSync(conf, `${readFileSync(conf, 'utf8').split('\n').filter((l) => l.startsWith('mozilla/')).slice(0, 3).join('\n')}\n`);
        await withRule('system.ca-certificates', { certs: [a.ca, b.ca] }, { tree: root.tree }, (r) => {
          assertOk(r);
          const f = join(r.tree, 'usr/local/share/ca-certificates', certFile(1));
          assert.equal(readFileSync(f, 'utf8'), b.ca);
          assert.equal(perms(lstatSync(f).mode), 0o644);
          const bundle = readFileSync(join(r.tree, 'etc/ssl/certs/ca-certificates.crt'), 'utf8');
          assert.ok(bundle.includes(a.ca.trim()) && bundle.includes(b.ca.trim()));
          assert.ok(bundle.indexOf(a.ca.trim()) < bundle.indexOf(b.ca.trim()), 'in the order given');
          // The tree's openssl, with the tree's default trust store, verifies a leaf the CA signed.
          writeFileSync(join(r.tree, 'tmp/leaf.pem'), readFileSync(a.leaf));
          const v = execFileSync('chroot', [r.tree, 'openssl', 'verify', '-CApath', '/etc/ssl/certs', '/tmp/leaf.pem'], { encoding: 'utf8' });
          assert.match(v, /leaf\.pem: OK/);
          bundles.push(createHash('sha256').update(bundle).digest('hex'));
        });
      } finally {
        root.cleanup();
      }
    }
  } finally {
    a.cleanup();
    b.cleanup();
  }
  assert.equal(bundles[0], bundles[1], 'the same certificates give the same bundle');
});

test('a tree without ca-certificates fails with what to install; the schema takes one PEM certificate per item', T, async () => {
  const a = testCA('imgmake test CA three');
  try {
    await withRule('system.ca-certificates', { certs: [a.ca] }, {}, (r) => assertFails(r, "install Debian's ca-certificates package"));
    assert.deepEqual(await schemaErrors('system.ca-certificates', { certs: [a.ca] }), []);
    assert.notDeepEqual(await schemaErrors('system.ca-certificates', { certs: [`${a.ca}${a.ca}`] }), [], 'two in one item');
    assert.notDeepEqual(await schemaErrors('system.ca-certificates', { certs: ['hello'] }), []);
    assert.notDeepEqual(await schemaErrors('system.ca-certificates', { certs: [] }), []);
  } finally {
    a.cleanup();
  }
});
