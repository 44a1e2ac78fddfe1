/**
 * users.add on small Debian-like user databases through the real sandbox: exact file contents,
 * owners and modes of the database, homes and authorized_keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, runRule, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin',
  'existing:x:1000:1000:Existing User,,,:/home/existing:/bin/zsh',
];
const GROUP = ['root:x:0:', 'daemon:x:1:', 'adm:x:4:', 'shadow:x:42:', 'sudo:x:27:', 'www-data:x:33:', 'users:x:100:', 'nogroup:x:65534:', 'existing:x:1000:'];
const SHADOW = ['root:*:19000:0:99999:7:::', 'daemon:*:19000:0:99999:7:::', 'nobody:*:19000:0:99999:7:::', 'www-data:*:19000:0:99999:7:::', 'existing:$y$j9T$old$oldhash:19500:0:99999:7:::'];
const GSHADOW = ['root:*::', 'daemon:*::', 'adm:*::', 'shadow:*::', 'sudo:*::existing', 'www-data:*::', 'users:*::', 'nogroup:*::', 'existing:!::'];

const text = (lines: string[]) => lines.map((l) => `${l}\n`).join('');
const read = (tree: string, rel: string) => readFileSync(join(tree, rel), 'utf8');
/** SOURCE_DATE_EPOCH 315532800 (1980-01-01) in days. */
const DAYS = 3652;

const HASH = '$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg';
const KEY1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3m2c4b8h1 alice@laptop';
const KEY2 = 'from="10.0.0.0/8" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ alice@ci';

function debianTree(tree: string, opts: { gshadow?: boolean } = {}): void {
  mkdirSync(join(tree, 'etc/skel'), { recursive: true });
  writeFileSync(join(tree, 'etc/passwd'), text(PASSWD), { mode: 0o644 });
  writeFileSync(join(tree, 'etc/group'), text(GROUP), { mode: 0o644 });
  writeFileSync(join(tree, 'etc/shadow'), text(SHADOW), { mode: 0o640 });
  chownSync(join(tree, 'etc/shadow'), 0, 42);
  if (opts.gshadow !== false) {
    writeFileSync(join(tree, 'etc/gshadow'), text(GSHADOW), { mode: 0o640 });
    chownSync(join(tree, 'etc/gshadow'), 0, 42);
  }
  writeFileSync(join(tree, 'etc/skel/.bashrc'), '# ~/.bashrc\n');
  writeFileSync(join(tree, 'etc/skel/.profile'), '# ~/.profile\n');
  mkdirSync(join(tree, 'etc/skel/.config'));
  symlinkSync('.bashrc', join(tree, 'etc/skel/.bash_aliases'));
  mkdirSync(join(tree, 'home/existing'), { recursive: true });
  writeFileSync(join(tree, 'home/existing/notes'), 'mine\n');
  chownSync(join(tree, 'home/existing'), 1000, 1000);
  chownSync(join(tree, 'home/existing/notes'), 1000, 1000);
}

/** Every entry under a home: `path mode uid:gid` (links: `-> target`), sorted. */
function homeListing(tree: string, home: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const st = lstatSync(join(tree, rel));
    const id = `${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out.push(`${rel} link ${id}`);
    else out.push(`${rel} ${perms(st.mode).toString(8)} ${id}`);
    if (st.isDirectory()) for (const n of readdirSync(join(tree, rel)).sort()) walk(`${rel}/${n}`);
  };
  walk(home);
  return out;
}

test('new users: first free ids from 1000, own groups, supplementary groups, shadow, homes from skel, authorized_keys', T, async () => {
  const options = {
    users: [
      { name: 'alice', groups: ['sudo', 'adm'], password_hash: HASH, ssh_keys: [KEY1, KEY2], gecos: 'Alice Example' },
      { name: 'bob', groups: ['sudo'] },
    ],
  };
  await withRule('users.add', options, { tree: debianTree }, (r) => {
    assertOk(r);
    assert.equal(read(r.tree, 'etc/passwd'), text([...PASSWD, 'alice:x:1001:1001:Alice Example:/home/alice:/bin/bash', 'bob:x:1002:1002::/home/bob:/bin/bash']));
    assert.equal(read(r.tree, 'etc/shadow'), text([...SHADOW, `alice:${HASH}:${DAYS}:0:99999:7:::`, `bob:!:${DAYS}:0:99999:7:::`]));
    assert.equal(
      read(r.tree, 'etc/group'),
      text(['root:x:0:', 'daemon:x:1:', 'adm:x:4:alice', 'shadow:x:42:', 'sudo:x:27:alice,bob', 'www-data:x:33:', 'users:x:100:', 'nogroup:x:65534:', 'existing:x:1000:', 'alice:x:1001:', 'bob:x:1002:']),
    );
    assert.equal(
      read(r.tree, 'etc/gshadow'),
      text(['root:*::', 'daemon:*::', 'adm:*::alice', 'shadow:*::', 'sudo:*::existing,alice,bob', 'www-data:*::', 'users:*::', 'nogroup:*::', 'existing:!::', 'alice:!::', 'bob:!::']),
    );
    for (const [f, mode, gid] of [['etc/passwd', 0o644, 0], ['etc/group', 0o644, 0], ['etc/shadow', 0o640, 42], ['etc/gshadow', 0o640, 42]] as const) {
      const st = lstatSync(join(r.tree, f));
      assert.equal(perms(st.mode), mode, f);
      assert.equal(`${st.uid}:${st.gid}`, `0:${gid}`, f);
    }
    assert.deepEqual(homeListing(r.tree, 'home/alice'), [
      'home/alice 700 1001:1001',
      'home/alice/.bash_aliases link 1001:1001',
      'home/alice/.bashrc 644 1001:1001',
      'home/alice/.config 755 1001:1001',
      'home/alice/.profile 644 1001:1001',
      'home/alice/.ssh 700 1001:1001',
      'home/alice/.ssh/authorized_keys 600 1001:1001',
    ]);
    assert.equal(read(r.tree, 'home/alice/.ssh/authorized_keys'), `${KEY1}\n${KEY2}\n`);
    assert.equal(read(r.tree, 'home/alice/.bashrc'), '# ~/.bashrc\n');
    assert.deepEqual(homeListing(r.tree, 'home/bob'), [
      'home/bob 700 1002:1002',
      'home/bob/.bash_aliases link 1002:1002',
      'home/bob/.bashrc 644 1002:1002',
      'home/bob/.config 755 1002:1002',
      'home/bob/.profile 644 1002:1002',
    ]);
  });
});

test('ids given elsewhere in the stage are skipped; named primary groups, new groups, system users; no gshadow stays none', T, async () => {
  const options = {
    groups: [{ name: 'docker', system: true }, { name: 'devs', gid: 2000 }, { name: 'ops' }, { name: 'users' }],
    users: [
      { name: 'first', groups: ['devs'] },
      { name: 'second', uid: 1001, gid: 'users', home: '/srv/second', shell: '/bin/sh' },
      { name: 'svc', system: true, groups: ['docker'] },
      { name: 'third', gid: 1500 },
    ],
  };
  await withRule('users.add', options, { tree: (t) => debianTree(t, { gshadow: false }) }, (r) => {
    assertOk(r);
    assert.equal(
      read(r.tree, 'etc/passwd'),
      text([
        ...PASSWD,
        'first:x:1002:1002::/home/first:/bin/bash',
        'second:x:1001:100::/srv/second:/bin/sh',
        'svc:x:100:102::/nonexistent:/usr/sbin/nologin',
        'third:x:1003:1500::/home/third:/bin/bash',
      ]),
    );
    assert.equal(
      read(r.tree, 'etc/group'),
      text([
        'root:x:0:', 'daemon:x:1:', 'adm:x:4:', 'shadow:x:42:', 'sudo:x:27:', 'www-data:x:33:', 'users:x:100:', 'nogroup:x:65534:', 'existing:x:1000:',
        'docker:x:101:svc', 'devs:x:2000:first', 'ops:x:1001:', 'first:x:1002:', 'svc:x:102:', 'third:x:1500:',
      ]),
    );
    assert.equal(read(r.tree, 'etc/shadow'), text([...SHADOW, ...['first:!', 'second:!', 'svc:*', 'third:!'].map((s) => `${s}:${DAYS}:0:99999:7:::`)]));
    assert.equal(existsSync(join(r.tree, 'etc/gshadow')), false);
    assert.equal(existsSync(join(r.tree, 'nonexistent')), false);
    assert.equal(perms(lstatSync(join(r.tree, 'srv')).mode), 0o755);
    assert.equal(lstatSync(join(r.tree, 'srv/second')).uid, 1001);
    assert.equal(lstatSync(join(r.tree, 'srv/second')).gid, 100);
  });
});

test('an existing user is updated: password, keys and groups; uid, home, shell, gecos and the home\'s files kept', T, async () => {
  const options = { users: [{ name: 'existing', groups: ['sudo', 'adm'], password_hash: HASH, ssh_keys: [KEY1] }, { name: 'root', ssh_keys: [KEY2] }] };
  await withRule('users.add', options, { tree: debianTree }, (r) => {
    assertOk(r);
    assert.equal(read(r.tree, 'etc/passwd'), text(PASSWD));
    assert.equal(read(r.tree, 'etc/shadow'), text([...SHADOW.slice(0, 4), `existing:${HASH}:${DAYS}:0:99999:7:::`]));
    assert.match(read(r.tree, 'etc/group'), /^adm:x:4:existing$/m);
    assert.match(read(r.tree, 'etc/group'), /^sudo:x:27:existing$/m);
    assert.match(read(r.tree, 'etc/gshadow'), /^sudo:\*::existing$/m, 'already a member: not added twice');
    assert.deepEqual(homeListing(r.tree, 'home/existing'), [
      'home/existing 755 1000:1000',
      'home/existing/.ssh 700 1000:1000',
      'home/existing/.ssh/authorized_keys 600 1000:1000',
      'home/existing/notes 644 1000:1000',
    ]);
    assert.equal(read(r.tree, 'root/.ssh/authorized_keys'), `${KEY2}\n`);
    assert.equal(lstatSync(join(r.tree, 'root/.ssh/authorized_keys')).uid, 0);
    assert.equal(perms(lstatSync(join(r.tree, 'root')).mode), 0o700, 'a missing /root is made like any home');
  });
});

test('homes: none made for an existing user only joining groups; a system user\'s given home is made without skel', T, async () => {
  const options = { users: [{ name: 'www-data', groups: ['adm'] }, { name: 'svc', system: true, home: '/var/lib/svc' }] };
  await withRule('users.add', options, { tree: debianTree }, (r) => {
    assertOk(r);
    assert.equal(existsSync(join(r.tree, 'var/www')), false);
    assert.match(read(r.tree, 'etc/group'), /^adm:x:4:www-data$/m);
    assert.match(read(r.tree, 'etc/passwd'), /^svc:x:100:101::\/var\/lib\/svc:\/usr\/sbin\/nologin$/m);
    assert.deepEqual(homeListing(r.tree, 'var/lib/svc'), ['var/lib/svc 700 100:101']);
    assert.equal(perms(lstatSync(join(r.tree, 'var/lib')).mode), 0o755);
  });
});

const HOST_DB = ['passwd', 'group', 'shadow', 'gshadow'];

test('on copies of the buildroot\'s own database a new user is appended, every other line and mode kept', { ...T, skip: !HOST_DB.every((f) => existsSync(`/etc/${f}`)) }, async () => {
  const host = Object.fromEntries(HOST_DB.map((f) => [f, readFileSync(`/etc/${f}`, 'utf8')]));
  const ids = (db: string, k: number) => new Set(db.split('\n').filter(Boolean).map((l) => Number(l.split(':')[k])));
  const uids = ids(host['passwd']!, 2);
  const gids = ids(host['group']!, 2);
  let uid = 1000;
  while (uids.has(uid)) uid++;
  let gid = uid;
  if (gids.has(gid)) for (gid = 1000; gids.has(gid); gid++);
  const joins = ['adm', 'sudo'].filter((g) => host['group']!.split('\n').some((l) => l.startsWith(`${g}:`)));
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'etc'));
    for (const f of HOST_DB) {
      const st = lstatSync(`/etc/${f}`);
      copyFileSync(`/etc/${f}`, join(tree, 'etc', f));
      chownSync(join(tree, 'etc', f), st.uid, st.gid);
      chmodSync(join(tree, 'etc', f), perms(st.mode));
    }
  };
  await withRule('users.add', { users: [{ name: 'imgmake-tester', groups: joins }] }, { tree: setup }, (r) => {
    assertOk(r);
    const end = (t: string) => (t === '' || t.endsWith('\n') ? t : `${t}\n`);
    assert.equal(read(r.tree, 'etc/passwd'), `${end(host['passwd']!)}imgmake-tester:x:${uid}:${gid}::/home/imgmake-tester:/bin/bash\n`);
    assert.equal(read(r.tree, 'etc/shadow'), `${end(host['shadow']!)}imgmake-tester:!:${DAYS}:0:99999:7:::\n`);
    const group = read(r.tree, 'etc/group').split('\n');
    assert.equal(group.at(-2), `imgmake-tester:x:${gid}:`);
    for (const g of joins) assert.ok(group.some((l) => l.startsWith(`${g}:`) && l.split(':')[3]!.split(',').includes('imgmake-tester')), g);
    assert.equal(group.length, host['group']!.split('\n').filter(Boolean).length + 2);
    for (const f of HOST_DB) {
      const a = lstatSync(`/etc/${f}`);
      const b = lstatSync(join(r.tree, 'etc', f));
      assert.equal(`${perms(b.mode)} ${b.uid}:${b.gid}`, `${perms(a.mode)} ${a.uid}:${a.gid}`, f);
    }
    assert.equal(lstatSync(join(r.tree, 'home/imgmake-tester')).uid, uid);
  });
});

test('the same options on the same tree give the same bytes', T, async () => {
  const options = { groups: [{ name: 'devs' }], users: [{ name: 'alice', groups: ['devs', 'sudo'], ssh_keys: [KEY1] }, { name: 'svc', system: true }] };
  const a = await runRule('users.add', options, { tree: debianTree });
  const b = await runRule('users.add', options, { tree: debianTree });
  try {
    assertOk(a);
    assertOk(b);
    for (const f of ['etc/passwd', 'etc/shadow', 'etc/group', 'etc/gshadow', 'home/alice/.ssh/authorized_keys']) assert.equal(read(a.tree, f), read(b.tree, f), f);
    assert.deepEqual(homeListing(a.tree, 'home/alice'), homeListing(b.tree, 'home/alice'));
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('a symlinked /etc/shadow is read and replaced by a file, its target untouched; a symlinked home is refused', T, async () => {
  const setup = (tree: string) => {
    debianTree(tree);
    writeFileSync(join(tree, 'etc/shadow.real'), text(SHADOW), { mode: 0o640 });
    rmSync(join(tree, 'etc/shadow'));
    symlinkSync('shadow.real', join(tree, 'etc/shadow'));
  };
  await withRule('users.add', { users: [{ name: 'carol' }] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.ok(lstatSync(join(r.tree, 'etc/shadow')).isFile());
    assert.equal(read(r.tree, 'etc/shadow'), text([...SHADOW, `carol:!:${DAYS}:0:99999:7:::`]));
    assert.equal(read(r.tree, 'etc/shadow.real'), text(SHADOW));
  });
  const linkedHome = (tree: string) => {
    debianTree(tree);
    mkdirSync(join(tree, 'srv/dave'), { recursive: true });
    symlinkSync('/srv/dave', join(tree, 'home/dave'));
  };
  await withRule('users.add', { users: [{ name: 'dave' }] }, { tree: linkedHome }, (r) => {
    assertFails(r, 'users.add: user dave: home /home/dave is a symlink');
  });
});

test('failures: unknown groups, taken or changed ids, a missing database, keys without a home', T, async () => {
  const cases: [unknown, string][] = [
    [{ users: [{ name: 'eve', groups: ['wheel'] }] }, 'users.add: user eve: group wheel does not exist in /etc/group (list it under groups: to create it)'],
    [{ users: [{ name: 'eve', gid: 'staff' }] }, 'users.add: user eve: primary group staff does not exist in /etc/group'],
    [{ users: [{ name: 'eve', uid: 1000 }] }, 'users.add: user eve: uid 1000 is taken by user existing'],
    [{ users: [{ name: 'existing', uid: 1234 }] }, 'users.add: user existing exists with uid 1000, not 1234 (users.add does not renumber users)'],
    [{ groups: [{ name: 'sudo', gid: 28 }] }, 'users.add: group sudo exists with gid 27, not 28'],
    [{ groups: [{ name: 'devs', gid: 4 }] }, 'users.add: group devs: gid 4 is taken by group adm'],
    [{ users: [{ name: 'svc', system: true, ssh_keys: [KEY1] }] }, 'users.add: user svc has ssh_keys but no home (/nonexistent)'],
  ];
  for (const [options, message] of cases) {
    await withRule('users.add', options, { tree: debianTree }, (r) => {
      assertFails(r, message);
      assert.equal(read(r.tree, 'etc/passwd'), text(PASSWD), 'nothing written on failure');
      assert.equal(read(r.tree, 'etc/group'), text(GROUP));
    });
  }
  await withRule('users.add', { users: [{ name: 'eve' }] }, { tree: (t) => mkdirSync(join(t, 'etc')) }, (r) => {
    assertFails(r, 'users.add: /etc/passwd is missing from the tree');
  });
});

test('the schema rejects bad names, hashes, keys and paths; a user listed twice is refused', T, async () => {
  const bad = [
    { users: [{ name: 'Alice' }] },
    { users: [{ name: '1abc' }] },
    { users: [{ name: 'a b' }] },
    { users: [{ name: 'a'.repeat(33) }] },
    { users: [{ name: 'x', password_hash: 'plain:text' }] },
    { users: [{ name: 'x', password_hash: 'hunter2' }] },
    { users: [{ name: 'x', password_hash: '' }] },
    { users: [{ name: 'x', ssh_keys: ['ssh-ed25519 AAA\nssh-rsa BBB'] }] },
    { users: [{ name: 'x', home: 'home/x' }] },
    { users: [{ name: 'x', shell: '/bin/b:sh' }] },
    { users: [{ name: 'x', gecos: 'a:b' }] },
    { users: [{ name: 'x', groups: ['Sudo'] }] },
    { users: [{ name: 'x', gid: 'no good' }] },
    { users: [{ name: 'x', uid: -1 }] },
    { groups: [{ name: 'g', gid: 'x' }] },
    { users: [{ uid: 5 }] },
  ];
  for (const b of bad) assert.notDeepEqual(await schemaErrors('users.add', b), [], JSON.stringify(b));
  assert.deepEqual(await schemaErrors('users.add', { users: [{ name: '_svc-1', gid: 'users', password_hash: '!', groups: ['systemd-journal'] }, { name: 'y', gid: 100, password_hash: HASH }] }), []);
  await assert.rejects(runRule('users.add', { users: [{ name: 'x' }, { name: 'x' }] }), /user x is listed twice/);
});
