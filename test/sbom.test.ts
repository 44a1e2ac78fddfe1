/**
 * `build --with-sbom` without a Debian install: the apt format's database reader on written
 * texts (installed packages only, DEP-5 licenses mapped to SPDX, purls, suppliers, the lock's
 * sha256), the SPDX writer validated against the official SPDX 2.3 JSON schema, and, through
 * the CLI on a small tree that fakes a package database, which tree is read (the nearest
 * pipeline the image is made from) and that links in an untrusted tree never read the host's
 * files. The Debian end to end (dpkg-query's list, a real image) is sbom-debian.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { database, expressionOf, installedOf, licenseOf, purlOf, spdxOf, supplierOf } from '../src/packages/apt/database.js';
import { spdxText } from '../src/sbom/spdx.js';
import { candidatePipelines } from '../src/sbom/index.js';
import type { Definition, TargetDef } from '../src/definition.js';
import type { InstalledPackage } from '../src/packages/input.js';
import { imgmake, projectWith } from './helpers/cli.js';
import { spdxConsistency, spdxValidator } from './helpers/spdx.js';

const STATUS = `Package: hello
Status: install ok installed
Priority: optional
Maintainer: Santiago Vila <sanvila@debian.invalid>
Architecture: amd64
Version: 2.10-3
Description: example package based on GNU hello
 The GNU hello program produces a familiar, friendly greeting.

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: base-passwd
Status: install ok installed
Maintainer: Colin Watson <cjwatson@debian.invalid>
Architecture: amd64
Version: 1:3.6.1

Package: zlib1g
Status: install ok installed
Maintainer: Mark Brown <broonie@debian.invalid>
Architecture: amd64
Version: 1:1.2.13.dfsg-1
`;

const DEP5 = `Format: https://copyright-format.invalid/1.0/
Upstream-Name: hello

Files: *
Copyright: 1992-2022 Free Software Foundation, Inc.
License: GPL-3+

Files: lib/*
Copyright: FSF
License: GPL-2+ with Autoconf exception or Expat, and public-domain

License: GPL-3+
 This program is free software…
`;

test('apt database: installed packages only, sorted; suppliers; purls with epochs encoded', () => {
  const got = installedOf(STATUS);
  assert.deepEqual(got.map((p) => `${p.name} ${p.version} ${p.architecture}`), ['base-passwd 1:3.6.1 amd64', 'hello 2.10-3 amd64', 'zlib1g 1:1.2.13.dfsg-1 amd64']);
  assert.equal(supplierOf('Santiago Vila <sanvila@debian.invalid>'), 'Organization: Santiago Vila (sanvila@debian.invalid)');
  assert.equal(purlOf('base-passwd', '1:3.6.1', 'amd64', { id: 'debian', versionId: '12' }), 'pkg:deb/debian/base-passwd@1%3A3.6.1?arch=amd64&distro=debian-12');
  assert.equal(purlOf('libstdc++6', '12.2.0-14', 'amd64', { id: 'debian' }), 'pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64');
});

test('apt database: DEP-5 license names map to SPDX identifiers, others to LicenseRefs; prose declares nothing', () => {
  assert.equal(spdxOf('GPL-2+'), 'GPL-2.0-or-later');
  assert.equal(spdxOf('LGPL-2.1'), 'LGPL-2.1-only');
  assert.equal(spdxOf('Expat'), 'MIT');
  assert.equal(spdxOf('GPL-3+ with Bison exception'), 'GPL-3.0-or-later WITH Bison-exception-2.2');
  assert.equal(spdxOf('GPL-7'), undefined);
  const refs = new Map<string, string>();
  assert.equal(expressionOf('GPL-1+ or Artistic', refs), 'GPL-1.0-or-later OR Artistic-1.0');
  assert.equal(expressionOf('GPL-2+ with Autoconf exception or Expat, and public-domain', refs), '(GPL-2.0-or-later WITH Autoconf-exception-2.0 OR MIT) AND LicenseRef-public-domain');
  assert.deepEqual([...refs], [['LicenseRef-public-domain', 'public-domain']]);
  assert.equal(licenseOf(DEP5, new Map()), 'GPL-3.0-or-later AND ((GPL-2.0-or-later WITH Autoconf-exception-2.0 OR MIT) AND LicenseRef-public-domain)');
  assert.equal(licenseOf('This is hello, written by … Copyright: GPL\nLicense: GPL-2\n', new Map()), undefined, 'not machine-readable: no declaration');
});

test('apt database: want asks for the status, then each installed package copyright; read takes the lock sha256', () => {
  const first = database.want(new Map());
  assert.ok(first.includes('var/lib/dpkg/status') && first.includes('etc/os-release'));
  const files = new Map([
    ['var/lib/dpkg/status', STATUS],
    ['etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'],
    ['usr/share/doc/hello/copyright', DEP5],
  ]);
  const second = database.want(files);
  assert.ok(second.includes('usr/share/doc/hello/copyright') && !second.includes('usr/share/doc/removed/copyright'));
  const lock = [{ name: 'hello', version: '2.10-3', architecture: 'amd64', sha256: 'a'.repeat(64), path: 'pool/main/h/hello/hello_2.10-3_amd64.deb', priority: 'optional', section: 'devel', source: 'archive', size: 1 }];
  const r = database.read(files, lock);
  assert.ok(r.ok);
  const hello = r.value.find((p) => p.name === 'hello')!;
  assert.equal(hello.sha256, 'a'.repeat(64));
  assert.equal(hello.fileName, 'hello_2.10-3_amd64.deb');
  assert.equal(hello.purl, 'pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12');
  assert.equal(r.value.find((p) => p.name === 'zlib1g')!.sha256, undefined, 'not in the lock: no checksum');
  assert.equal(r.value.find((p) => p.name === 'zlib1g')!.license, undefined, 'no copyright file: no declaration');
});

const PACKAGES: InstalledPackage[] = [
  { name: 'hello', version: '2.10-3', architecture: 'amd64', supplier: 'Organization: Santiago Vila (sanvila@debian.invalid)', license: 'GPL-3.0-or-later AND LicenseRef-public-domain', licenseRefs: [{ id: 'LicenseRef-public-domain', name: 'public-domain', text: 'x' }], sha256: 'b'.repeat(64), fileName: 'hello_2.10-3_amd64.deb', purl: 'pkg:deb/debian/hello@2.10-3?arch=amd64' },
  { name: 'libstdc++6', version: '12.2.0-14', architecture: 'amd64', purl: 'pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64' },
];
const IMAGE = { target: 'qcow2', key: 'c'.repeat(64), files: [{ name: 'disk.qcow2', sha256: 'd'.repeat(64) }], pipeline: 'os', tool: 'imgmake-0.1.0', created: '1980-01-01T00:00:00Z' };

test('spdx: the document validates against the official SPDX 2.3 schema, is consistent, and is the same bytes each time', () => {
  const validate = spdxValidator();
  const text = spdxText(IMAGE, PACKAGES);
  const doc = JSON.parse(text);
  assert.deepEqual(validate(doc), []);
  assert.deepEqual(spdxConsistency(doc), []);
  assert.equal(spdxText(IMAGE, PACKAGES), text);
  assert.equal(doc.documentNamespace, `urn:imgmake:sbom:${'c'.repeat(64)}:qcow2`);
  assert.equal(doc.creationInfo.created, '1980-01-01T00:00:00Z');
  // The schema is a real check: a field SPDX 2.3 does not have fails it.
  doc.packages[1].architecture = 'amd64';
  assert.notDeepEqual(validate(doc), []);
});

test('sbom: the tree read is the nearest pipeline the image is made from (base, then inputs), never a buildroot', () => {
  const pl = (name: string, o: { base?: string; build?: string; inputs?: string[] } = {}) => [
    name,
    {
      name,
      ...(o.base ? { base: { pipeline: o.base } } : {}),
      ...(o.build ? { build: { pipeline: o.build } } : {}),
      stages: [{ inputs: (o.inputs ?? []).map((p) => ({ kind: 'pipeline', pipeline: p, name: p })) }],
    },
  ];
  const def = {
    pipelines: new Map([pl('tools'), pl('distro'), pl('os', { base: 'distro' }), pl('esp', { inputs: ['distro'] }), pl('disk', { build: 'tools', inputs: ['os', 'esp'] }), pl('qcow2', { inputs: ['disk'] })] as any),
  } as unknown as Definition;
  assert.deepEqual(candidatePipelines(def, { name: 'qcow2', pipeline: 'qcow2' } as TargetDef), ['qcow2', 'disk', 'os', 'esp', 'distro']);
});

/**
 * A tree that fakes a Debian package database: the status names two packages; one copyright
 * is an absolute link to /usr/share/doc/bash/copyright (the tree's own file, Expat; the
 * host's, which the sandbox's /usr is, says GPL-3+), the other one climbs out by `..` to
 * /usr/share/doc/dash/copyright, which only the host has (`..` stops at the tree's root).
 */
const FAKE = `version: 1
pipelines:
  os:
    stages:
      - rule: files.write
        options:
          files:
            - path: /var/lib/dpkg/status
              content: |
                Package: good
                Status: install ok installed
                Maintainer: A Team <team@example.org>
                Architecture: all
                Version: 1.0

                Package: sneaky
                Status: install ok installed
                Architecture: all
                Version: 2.0
            - path: /usr/share/doc/bash/copyright
              content: |
                Format: https://copyright-format.invalid/1.0/

                Files: *
                License: Expat
      - rule: files.symlink
        options:
          links:
            - { path: /usr/share/doc/good/copyright, target: /usr/share/doc/bash/copyright }
            - { path: /usr/share/doc/sneaky/copyright, target: ../../../../../../usr/share/doc/dash/copyright }
  disk:
    stages:
      - rule: shell.run
        inputs:
          root: { pipeline: os }
        options:
          script: echo image > disk.img
targets:
  disk: { pipeline: disk, export: [disk.img] }
`;

test('build --with-sbom on a tree with a fake package database: the nearest tree that holds one, links resolved inside the tree, identical bytes from a second build', async (t) => {
  const p = await projectWith(FAKE);
  t.after(p.cleanup);
  const a = await imgmake(['--json', '-f', p.file, 'build', 'disk', '--with-sbom']);
  assert.equal(a.code, 0, a.stderr + a.stdout);
  const path = join(p.dir, 'out', 'disk.spdx.json');
  const text = await readFile(path, 'utf8');
  const doc = JSON.parse(text);
  assert.deepEqual(spdxValidator()(doc), []);
  assert.deepEqual(spdxConsistency(doc), []);
  assert.match(doc.creationInfo.comment, /pipeline os,/);
  const byName = new Map<string, any>(doc.packages.map((x: any) => [x.name, x]));
  assert.deepEqual([...byName.keys()], ['disk', 'good', 'sneaky']);
  assert.equal(byName.get('good').licenseDeclared, 'MIT', "an absolute link is resolved in the tree: the tree's file, not the host's");
  assert.equal(byName.get('sneaky').licenseDeclared, 'NOASSERTION', "a link out by .. stops at the tree's root: the host's file is never read");
  assert.equal(byName.get('good').supplier, 'Organization: A Team (team@example.org)');
  assert.equal(byName.get('disk').checksums[0].checksumValue, createHash('sha256').update('image\n').digest('hex'));
  // Again into another out/: the same bytes.
  const b = await imgmake(['--json', '--out', join(p.dir, 'out2'), '-f', p.file, 'build', 'disk', '--with-sbom']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await readFile(join(p.dir, 'out2', 'disk.spdx.json'), 'utf8'), text);
});

test('build --with-sbom of an image made from no package database fails, exit 1, saying where it looked', async (t) => {
  const p = await projectWith(FAKE.replace(/            - path: \/var\/lib\/dpkg\/status[\s\S]*?Version: 2.0\n/, ''));
  t.after(p.cleanup);
  const r = await imgmake(['-f', p.file, 'build', 'disk', '--with-sbom']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout + r.stderr, /the SBOM of disk failed: no tree target disk is made from holds a package database imgmake can read \(looked in disk, os; formats with a reader: apt\)/);
});
