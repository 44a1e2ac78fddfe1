/**
 * systemd.units on temporary trees through the real sandbox: vendor units with [Install]
 * sections under usr/lib/systemd/system, links checked one by one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, perms, runRule, schemaErrors, withRule } from '../../test/helpers/rule-harness.js';

const T = { timeout: 30_000 };

const VENDOR: Record<string, string> = {
  'ssh.service': '[Unit]\nDescription=OpenBSD Secure Shell server\n\n[Service]\nExecStart=/usr/sbin/sshd -D\n\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n',
  'getty@.service': '[Unit]\nDescription=Getty on %I\n\n[Service]\nExecStart=-/sbin/agetty -o \'-p -- \\\\u\' --noclear - $TERM\n\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n',
  'serial-getty@.service': '[Unit]\nDescription=Serial Getty on %I\nBindsTo=dev-%i.device\n\n[Service]\nExecStart=-/sbin/agetty -o \'-p -- \\\\u\' --keep-baud 115200,57600,38400,9600 - $TERM\n\n[Install]\nWantedBy=getty.target\n',
  'cups.service': '[Service]\nExecStart=/usr/sbin/cupsd -l\n\n[Install]\nWantedBy=printer.target\nAlso=cups.socket cups.path\n',
  'cups.socket': '[Socket]\nListenStream=/run/cups/cups.sock\n\n[Install]\n# a comment\n  WantedBy = sockets.target\n',
  'cups.path': '[Path]\nPathExists=/var/cache/cups/org.cups.cupsd\n\n[Install]\nWantedBy=multi-user.target\n',
  // Specifiers, a reset, a continuation line, RequiredBy= and UpheldBy=.
  'app-worker@.service': '[Service]\nExecStart=/bin/true %i\n\n[Install]\nWantedBy=bogus.target\nWantedBy=\nWantedBy=%j.target \\\n  multi-user.target\nRequiredBy=%p.target\nUpheldBy=%N-watch.target\nDefaultInstance=main\n',
  'static.service': '[Unit]\nDescription=Pulled in by others\n\n[Service]\nExecStart=/bin/true\n',
  'odd.service': '[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=%H.target\n',
  'multi-user.target': '[Unit]\nDescription=Multi-User System\n',
  'graphical.target': '[Unit]\nDescription=Graphical Interface\n',
  'getty.target': '[Unit]\nDescription=Login Prompts\n\n[Install]\nWantedBy=multi-user.target\n',
};

/** A merged-/usr Debian-like tree: lib -> usr/lib, vendor units, a vendor-masked unit. */
function debianTree(tree: string): void {
  const sys = join(tree, 'usr/lib/systemd/system');
  mkdirSync(sys, { recursive: true });
  symlinkSync('usr/lib', join(tree, 'lib'));
  for (const [name, content] of Object.entries(VENDOR)) writeFileSync(join(sys, name), content);
  symlinkSync('/dev/null', join(sys, 'sudo.service'));
  mkdirSync(join(tree, 'etc/systemd/system'), { recursive: true });
}

/** Every entry under etc/systemd/system: `dir/`, `file`, `link -> target`, sorted. */
function listing(tree: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(tree, rel)).sort()) {
      const r = `${rel}/${name}`;
      const st = lstatSync(join(tree, r));
      if (st.isSymbolicLink()) out.push(`${r.slice(19)} -> ${readlinkSync(join(tree, r))}`);
      else if (st.isDirectory()) {
        out.push(`${r.slice(19)}/`);
        walk(r);
      } else out.push(r.slice(19));
    }
  };
  walk('etc/systemd/system');
  return out;
}

const U = '/usr/lib/systemd/system';

test('enables plain units, aliases, Also=, a template by its DefaultInstance and a serial-getty instance; sets the default target', T, async () => {
  const options = {
    enable: ['ssh.service', 'getty@.service', 'serial-getty@ttyS0.service', 'cups.service'],
    default_target: 'multi-user.target',
  };
  await withRule('systemd.units', options, { tree: debianTree }, (r) => {
    assertOk(r);
    assert.deepEqual(listing(r.tree), [
      `default.target -> ${U}/multi-user.target`,
      'getty.target.wants/',
      `getty.target.wants/getty@tty1.service -> ${U}/getty@.service`,
      `getty.target.wants/serial-getty@ttyS0.service -> ${U}/serial-getty@.service`,
      'multi-user.target.wants/',
      `multi-user.target.wants/cups.path -> ${U}/cups.path`,
      `multi-user.target.wants/ssh.service -> ${U}/ssh.service`,
      'printer.target.wants/',
      `printer.target.wants/cups.service -> ${U}/cups.service`,
      'sockets.target.wants/',
      `sockets.target.wants/cups.socket -> ${U}/cups.socket`,
      `sshd.service -> ${U}/ssh.service`,
    ]);
    assert.equal(perms(lstatSync(join(r.tree, 'etc/systemd/system/getty.target.wants')).mode), 0o755);
  });
});

test('a unit written to /etc/systemd/system is enabled from there; specifiers, resets and continuations are read', T, async () => {
  const app = '[Unit]\nDescription=App\n\n[Service]\nExecStart=/usr/local/bin/app\n\n[Install]\nWantedBy=multi-user.target\nAlias=application.service\n';
  const options = { units: [{ name: 'app.service', content: app }], enable: ['app.service', 'app-worker@.service', 'app-worker@extra.service'] };
  await withRule('systemd.units', options, { tree: debianTree }, (r) => {
    assertOk(r);
    const st = lstatSync(join(r.tree, 'etc/systemd/system/app.service'));
    assert.ok(st.isFile());
    assert.equal(perms(st.mode), 0o644);
    assert.equal(st.uid, 0);
    assert.equal(readFileSync(join(r.tree, 'etc/systemd/system/app.service'), 'utf8'), app);
    assert.deepEqual(listing(r.tree), [
      'app-worker.target.requires/',
      `app-worker.target.requires/app-worker@extra.service -> ${U}/app-worker@.service`,
      `app-worker.target.requires/app-worker@main.service -> ${U}/app-worker@.service`,
      'app-worker@extra-watch.target.upholds/',
      `app-worker@extra-watch.target.upholds/app-worker@extra.service -> ${U}/app-worker@.service`,
      'app-worker@main-watch.target.upholds/',
      `app-worker@main-watch.target.upholds/app-worker@main.service -> ${U}/app-worker@.service`,
      'app.service',
      'application.service -> /etc/systemd/system/app.service',
      'multi-user.target.wants/',
      'multi-user.target.wants/app-worker@extra.service -> /usr/lib/systemd/system/app-worker@.service',
      'multi-user.target.wants/app-worker@main.service -> /usr/lib/systemd/system/app-worker@.service',
      'multi-user.target.wants/app.service -> /etc/systemd/system/app.service',
      'worker.target.wants/',
      `worker.target.wants/app-worker@extra.service -> ${U}/app-worker@.service`,
      `worker.target.wants/app-worker@main.service -> ${U}/app-worker@.service`,
    ]);
  });
});

test('a unit only in /lib/systemd/system of a tree without merged /usr links there', T, async () => {
  const setup = (tree: string) => {
    mkdirSync(join(tree, 'lib/systemd/system'), { recursive: true });
    writeFileSync(join(tree, 'lib/systemd/system/legacy.service'), '[Install]\nWantedBy=multi-user.target\n');
    writeFileSync(join(tree, 'lib/systemd/system/multi-user.target'), '[Unit]\n');
  };
  await withRule('systemd.units', { enable: ['legacy.service'], default_target: 'multi-user.target' }, { tree: setup }, (r) => {
    assertOk(r);
    assert.deepEqual(listing(r.tree), [
      'default.target -> /lib/systemd/system/multi-user.target',
      'multi-user.target.wants/',
      'multi-user.target.wants/legacy.service -> /lib/systemd/system/legacy.service',
    ]);
  });
});

test('disable removes the unit\'s links, its instances\' and aliases, follows Also= and an alias name; others stay', T, async () => {
  const setup = (tree: string) => {
    debianTree(tree);
    const e = join(tree, 'etc/systemd/system');
    for (const d of ['getty.target.wants', 'multi-user.target.wants', 'printer.target.wants', 'sockets.target.wants']) mkdirSync(join(e, d));
    symlinkSync(`${U}/getty@.service`, join(e, 'getty.target.wants/getty@tty1.service'));
    symlinkSync(`${U}/getty@.service`, join(e, 'getty.target.wants/getty@tty2.service'));
    symlinkSync(`${U}/serial-getty@.service`, join(e, 'getty.target.wants/serial-getty@ttyS0.service'));
    symlinkSync(`${U}/ssh.service`, join(e, 'multi-user.target.wants/ssh.service'));
    symlinkSync(`${U}/ssh.service`, join(e, 'sshd.service'));
    symlinkSync(`${U}/cups.service`, join(e, 'printer.target.wants/cups.service'));
    symlinkSync(`${U}/cups.socket`, join(e, 'sockets.target.wants/cups.socket'));
    symlinkSync(`${U}/cups.path`, join(e, 'multi-user.target.wants/cups.path'));
    symlinkSync(`${U}/getty.target`, join(e, 'multi-user.target.wants/getty.target'));
  };
  await withRule('systemd.units', { disable: ['getty@.service', 'sshd.service', 'cups.service'] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.deepEqual(listing(r.tree), [
      'getty.target.wants/',
      `getty.target.wants/serial-getty@ttyS0.service -> ${U}/serial-getty@.service`,
      'multi-user.target.wants/',
      `multi-user.target.wants/getty.target -> ${U}/getty.target`,
      'printer.target.wants/',
      'sockets.target.wants/',
    ]);
  });
});

test('mask links to /dev/null; enabling a masked unit, masking over a unit file fail', T, async () => {
  await withRule('systemd.units', { mask: ['ssh.service', 'serial-getty@ttyS1.service'] }, { tree: debianTree }, (r) => {
    assertOk(r);
    assert.deepEqual(listing(r.tree), ['serial-getty@ttyS1.service -> /dev/null', 'ssh.service -> /dev/null']);
  });
  await withRule('systemd.units', { enable: ['sudo.service'] }, { tree: debianTree }, (r) => {
    assertFails(r, 'enable: sudo.service is masked: /usr/lib/systemd/system/sudo.service is a link to /dev/null');
  });
  const withFile = (tree: string) => {
    debianTree(tree);
    writeFileSync(join(tree, 'etc/systemd/system/local.service'), '[Service]\nExecStart=/bin/true\n');
  };
  await withRule('systemd.units', { mask: ['local.service'] }, { tree: withFile }, (r) => {
    assertFails(r, 'mask: /etc/systemd/system/local.service is a unit file; masking would replace it');
    assert.ok(lstatSync(join(r.tree, 'etc/systemd/system/local.service')).isFile());
  });
});

test('unknown units fail with the places searched, for enable, disable, mask and the default target', T, async () => {
  await withRule('systemd.units', { enable: ['ssh.service', 'nginx.service'] }, { tree: debianTree }, (r) => {
    assertFails(r, 'enable: unknown unit nginx.service', '/usr/lib/systemd/system');
  });
  await withRule('systemd.units', { enable: ['nope@ttyS0.service'] }, { tree: debianTree }, (r) => {
    assertFails(r, 'enable: unknown unit nope@ttyS0.service: neither it nor nope@.service is in');
  });
  await withRule('systemd.units', { disable: ['nginx.service'] }, { tree: debianTree }, (r) => assertFails(r, 'disable: unknown unit nginx.service'));
  await withRule('systemd.units', { mask: ['nginx.service'] }, { tree: debianTree }, (r) => assertFails(r, 'mask: unknown unit nginx.service'));
  await withRule('systemd.units', { default_target: 'rescue.target' }, { tree: debianTree }, (r) => assertFails(r, 'default_target: unknown unit rescue.target'));
});

test('a template without DefaultInstance, a static unit and an unsupported specifier fail clearly', T, async () => {
  await withRule('systemd.units', { enable: ['serial-getty@.service'] }, { tree: debianTree }, (r) => {
    assertFails(r, 'enable: serial-getty@.service is a template without DefaultInstance=: name an instance, such as serial-getty@NAME.service');
    assert.deepEqual(listing(r.tree), []);
  });
  await withRule('systemd.units', { enable: ['static.service'] }, { tree: debianTree }, (r) => {
    assertFails(r, 'enable: static.service (/usr/lib/systemd/system/static.service) has no [Install] section');
  });
  await withRule('systemd.units', { enable: ['odd.service'] }, { tree: debianTree }, (r) => {
    assertFails(r, 'odd.service: unsupported specifier %H in [Install] %H.target');
  });
});

test('the same options on the same tree give the same links, twice', T, async () => {
  const options = { enable: ['ssh.service', 'getty@.service', 'serial-getty@ttyS0.service', 'cups.service'], mask: ['sudo.service'], default_target: 'graphical.target' };
  const a = await runRule('systemd.units', options, { tree: debianTree });
  const b = await runRule('systemd.units', options, { tree: debianTree });
  try {
    assertOk(a);
    assertOk(b);
    assert.deepEqual(listing(a.tree), listing(b.tree));
    assert.ok(listing(a.tree).includes(`default.target -> ${U}/graphical.target`));
    assert.ok(listing(a.tree).includes('sudo.service -> /dev/null'));
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('enabling again over existing links and a stale link of another target keeps one correct link', T, async () => {
  const setup = (tree: string) => {
    debianTree(tree);
    mkdirSync(join(tree, 'etc/systemd/system/multi-user.target.wants'));
    symlinkSync('/lib/systemd/system/ssh.service', join(tree, 'etc/systemd/system/multi-user.target.wants/ssh.service'));
  };
  await withRule('systemd.units', { enable: ['ssh.service'] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.equal(readlinkSync(join(r.tree, 'etc/systemd/system/multi-user.target.wants/ssh.service')), `${U}/ssh.service`);
  });
});

test('the schema rejects bad unit names; conflicting lists are refused before anything runs', T, async () => {
  for (const bad of ['ssh', 'ssh.servic', '../x.service', 'a/b.service', 'a b.service', '-x.service', 'a@b@c.service', "x'.service"]) {
    assert.notDeepEqual(await schemaErrors('systemd.units', { enable: [bad] }), [], bad);
  }
  assert.notDeepEqual(await schemaErrors('systemd.units', { default_target: 'ssh.service' }), []);
  assert.notDeepEqual(await schemaErrors('systemd.units', { units: [{ name: '../evil.service', content: '' }] }), []);
  assert.notDeepEqual(await schemaErrors('systemd.units', { enable: ['a.service', 'a.service'] }), []);
  for (const good of ['ssh.service', 'getty@.service', 'serial-getty@ttyS0.service', 'dev-disk-by\\x2duuid.swap', 'systemd-fsck@dev-vda1.service', 'user-1000.slice']) {
    assert.deepEqual(await schemaErrors('systemd.units', { enable: [good] }), [], good);
  }
  await assert.rejects(runRule('systemd.units', { enable: ['ssh.service'], mask: ['ssh.service'] }), /ssh.service is listed in both enable and mask/);
  await assert.rejects(runRule('systemd.units', { enable: ['a.service'], disable: ['a.service'] }), /both enable and disable/);
});

const HOST_UNITS = '/lib/systemd/system';
const hostHas = (names: string[]) => names.every((n) => existsSync(join(HOST_UNITS, n)));

test('the buildroot\'s own getty@ and serial-getty@ unit files (when it has them) enable as systemctl would', { ...T, skip: !hostHas(['getty@.service', 'serial-getty@.service']) }, async () => {
  const setup = (tree: string) => {
    debianTree(tree);
    for (const n of ['getty@.service', 'serial-getty@.service']) copyFileSync(join(HOST_UNITS, n), join(tree, 'usr/lib/systemd/system', n));
  };
  await withRule('systemd.units', { enable: ['getty@.service', 'serial-getty@ttyS0.service'] }, { tree: setup }, (r) => {
    assertOk(r);
    assert.deepEqual(listing(r.tree), [
      'getty.target.wants/',
      `getty.target.wants/getty@tty1.service -> ${U}/getty@.service`,
      `getty.target.wants/serial-getty@ttyS0.service -> ${U}/serial-getty@.service`,
    ]);
  });
});
