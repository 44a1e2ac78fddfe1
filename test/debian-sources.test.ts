/**
 * sources.ts: the host's Debian mirror from apt's source files. Fixture roots under
 * test/fixtures/apt-sources/ (made-up hosts) cover both formats and the entries that must not be
 * picked; one test reads this machine's real /etc/apt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostDebianMirror, parseSourceFile, pickDebianMirror, readSourceEntries } from '../src/packages/apt/sources.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = (name: string) => join(repo, 'test', 'fixtures', 'apt-sources', name);

test('deb822: the archive and the security archive, comments between fields', async () => {
  assert.deepEqual(await hostDebianMirror(fixture('deb822')), {
    archive: 'http://mirror.invalid/debian',
    security: 'http://mirror.invalid/debian-security',
  });
  const entries = await readSourceEntries(fixture('deb822'));
  assert.equal(entries.length, 2);
  assert.deepEqual(entries[0], {
    types: ['deb'],
    uris: ['http://mirror.invalid/debian'],
    suites: ['bookworm', 'bookworm-updates'],
    components: ['main'],
    signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    enabled: true,
    origin: `${fixture('deb822')}/etc/apt/sources.list.d/debian.sources:1`,
  });
  assert.equal(entries[1]!.origin.endsWith('debian.sources:8'), true);
});

test('one-line: options in brackets, trailing slash and comments dropped, deb-src ignored', async () => {
  assert.deepEqual(await hostDebianMirror(fixture('one-line')), {
    archive: 'http://ftp.mirror.invalid/debian',
    security: 'http://security.mirror.invalid/debian-security',
  });
  const entries = await readSourceEntries(fixture('one-line'));
  assert.deepEqual(
    entries.map((e) => [e.types[0], e.uris[0], e.suites[0], e.components.join(','), e.signedBy ?? '-']),
    [
      ['deb-src', 'http://src.invalid/debian', 'bookworm', 'main', '-'],
      ['deb', 'http://ftp.mirror.invalid/debian/', 'bookworm', 'main,contrib,non-free-firmware', '/usr/share/keyrings/debian-archive-keyring.gpg'],
      ['deb', 'http://ftp.mirror.invalid/debian/', 'bookworm-updates', 'main', '-'],
      ['deb', 'http://security.mirror.invalid/debian-security', 'bookworm-security', 'main,contrib', '-'],
    ],
  );
});

test('mixed: third-party first, Enabled: no, deb-src only, an ignored file name, lower-case fields, inline key', async () => {
  assert.deepEqual(await hostDebianMirror(fixture('mixed')), {
    archive: 'https://mirror.invalid/debian',
    security: 'https://mirror.invalid/debian-security',
  });
  const entries = await readSourceEntries(fixture('mixed'));
  assert.equal(entries.some((e) => e.uris.includes('http://wrong.invalid/debian')), false, '*.list.disabled is not read');
  const disabled = entries.find((e) => e.uris.includes('http://old.invalid/debian'));
  assert.equal(disabled?.enabled, false);
  const inline = entries.find((e) => e.uris.includes('https://second.invalid/debian'));
  assert.equal(inline?.signedBy, 'inline');
  assert.deepEqual(inline?.uris, ['https://mirror.invalid/debian/', 'https://second.invalid/debian']);
});

test('a snapshot URI is Debian by its keyring; no security archive is fine', async () => {
  assert.deepEqual(await hostDebianMirror(fixture('snapshot')), {
    archive: 'http://snapshot.invalid/archive/debian/20250520T000000Z',
  });
});

test('no Debian http(s) source: undefined (third-party, file:, mirror+file:, no /etc/apt at all)', async () => {
  assert.equal(await hostDebianMirror(fixture('third-party-only')), undefined);
  assert.equal(await hostDebianMirror(fixture('no-apt')), undefined);
});

test('pure parsing: continuation lines, blank-line separated paragraphs, unreadable lines skipped', () => {
  const deb822 = parseSourceFile(
    'Types: deb\nURIs:\n http://a.invalid/debian\n  http://b.invalid/debian\nSuites: trixie\n\n\n# whole paragraph commented\n#Types: deb\n\nnot a field\nTypes: deb\nURIs: http://c.invalid/debian-security\nSuites: trixie-security\nEnabled: yes\n',
    'deb822',
  );
  assert.deepEqual(
    deb822.map((e) => e.uris),
    [['http://a.invalid/debian', 'http://b.invalid/debian'], ['http://c.invalid/debian-security']],
  );
  assert.deepEqual(pickDebianMirror(deb822), { archive: 'http://a.invalid/debian', security: 'http://c.invalid/debian-security' });
  const oneLine = parseSourceFile('deb\ndeb [broken http://x.invalid/debian bookworm\ndeb http://old.invalid/debian-security buster/updates main\n', 'one-line');
  assert.equal(oneLine.length, 1);
  assert.equal(pickDebianMirror(oneLine), undefined, 'a security archive alone is not a mirror');
});

test("this machine's apt sources name an http(s) Debian archive", async () => {
  const m = await hostDebianMirror();
  assert.ok(m, 'no Debian source in /etc/apt (the lock and fetch tests need one)');
  assert.match(m.archive, /^https?:\/\/[^/\s]+(\/\S*)?$/);
  assert.doesNotMatch(m.archive, /\/$/, 'no trailing slash');
  if (m.security) assert.match(m.security, /^https?:\/\//);
});
