/**
 * The buildroot the RPM tests run dnf, rpm and createrepo_c in: a Debian tree built by imgmake
 * itself from test/fixtures/rpm/buildroot.yaml (an apt.install stage against the host's Debian
 * mirror), in a cache shared by every test run of this machine, then exported to a directory
 * this test file owns. The first build takes a minute or two; later ones are a no-op (~1 s)
 * plus the export (~4 s).
 *
 *     const br = await rpmBuildroot();      // memoized per test file
 *     br.dir                                 // the tree: give it as { kind: 'dir', path: br.dir }
 *
 * The shared cache is $IMGMAKE_RPM_TEST_CACHE, else /var/tmp/imgmake-rpm-test (kept between
 * runs on purpose, like any imgmake cache; remove it to start cold).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin } from './cli.js';
import { RPM_FIXTURES } from './rpm-repo.js';

export interface RpmBuildroot {
  /** The exported tree (a Debian root with dnf, rpm, createrepo_c, gpg). */
  dir: string;
}

let memo: Promise<RpmBuildroot> | undefined;

export function rpmBuildroot(): Promise<RpmBuildroot> {
  return (memo ??= make());
}

async function make(): Promise<RpmBuildroot> {
  const project = process.env['IMGMAKE_RPM_TEST_CACHE'] ?? '/var/tmp/imgmake-rpm-test';
  mkdirSync(project, { recursive: true });
  copyFileSync(join(RPM_FIXTURES, 'buildroot.yaml'), join(project, 'imgmake.yaml'));
  const run = (args: string[]) => {
    try {
      return execFileSync(process.execPath, [bin, '-f', join(project, 'imgmake.yaml'), ...args], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string };
      throw new Error(`imgmake ${args.join(' ')} failed (the RPM tests' buildroot, in ${project}):\n${x.stderr ?? ''}${x.stdout ?? ''}`);
    }
  };
  run(['build', '--until', 'rpm-buildroot.network-files', 'buildroot']);
  const parent = mkdtempSync(join(tmpdir(), 'imgmake-rpm-buildroot-'));
  process.once('exit', () => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'tree');
  run(['export', 'rpm-buildroot.network-files', dir]);
  return { dir };
}
