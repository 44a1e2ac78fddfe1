/**
 * system.locale-gen through the real sandbox, chrooted into a Debian root made from the host's
 * own /usr (test/helpers/host-root.ts): the tree's locale-gen compiles the locales, `locale -a`
 * lists them, and the archive is the same bytes on a second run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';
import { hostRoot } from '../../test/helpers/host-root.js';
import { normalized } from './index.js';

const T = { timeout: 120_000 };
const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

test('generates the locales into the tree: /etc/locale.gen from SUPPORTED, locale -a lists them, same archive twice', T, async () => {
  const digests: string[] = [];
  for (let i = 0; i < 2; i++) {
    const root = hostRoot();
    try {
      await withRule('system.locale-gen', { locales: ['de_DE.UTF-8', 'fr_FR@euro'] }, { tree: root.tree }, (r) => {
        assertOk(r);
        assert.equal(readFileSync(join(r.tree, 'etc/locale.gen'), 'utf8'), 'de_DE.UTF-8 UTF-8\nfr_FR@euro ISO-8859-15\n');
        const all = execFileSync('chroot', [r.tree, 'locale', '-a'], { encoding: 'utf8' }).split('\n');
        assert.ok(all.includes('de_DE.utf8') && all.includes('fr_FR@euro'), all.join(' '));
        const date = execFileSync('chroot', [r.tree, 'sh', '-c', 'LC_ALL=de_DE.UTF-8 locale day'], { encoding: 'utf8' });
        assert.match(date, /Sonntag/);
        digests.push(sha(join(r.tree, 'usr/lib/locale/locale-archive')));
      });
    } finally {
      root.cleanup();
    }
  }
  assert.equal(digests[0], digests[1], 'the same locales give the same locale-archive');
});

test('a locale SUPPORTED does not list fails the stage and says so', T, async () => {
  const root = hostRoot();
  try {
    await withRule('system.locale-gen', { locales: ['xx_YY.UTF-8'] }, { tree: root.tree }, (r) => assertFails(r, 'locale xx_YY.UTF-8 is not in the tree\'s /usr/share/i18n/SUPPORTED'));
  } finally {
    root.cleanup();
  }
});

test('a tree without the locales package fails with what to install', T, async () => {
  await withRule('system.locale-gen', { locales: ['de_DE.UTF-8'] }, {}, (r) => assertFails(r, "install Debian's locales package"));
});

test('normalized names as locale -a prints them; the schema refuses shell characters and an empty list', async () => {
  assert.equal(normalized('en_US.UTF-8'), 'en_US.utf8');
  assert.equal(normalized('de_DE'), 'de_DE');
  assert.equal(normalized('sr_RS.UTF-8@latin'), 'sr_RS.utf8@latin');
  assert.equal(normalized('de_DE.ISO-8859-15@euro'), 'de_DE.iso885915@euro');
  assert.notDeepEqual(await schemaErrors('system.locale-gen', { locales: [] }), []);
  assert.notDeepEqual(await schemaErrors('system.locale-gen', { locales: ['en_US;reboot'] }), []);
});
