import type { RuleInvoke } from '../../src/rule.js';
import { q, shell } from '../_lib/sh.js';

interface Options {
  suite: string;
  components: string[];
  architecture: string;
  variant: 'essential' | 'required' | 'important' | 'standard' | 'custom';
  packages: string[];
}

const install: RuleInvoke<Options> = (options, ctx) => {
  const debs = ctx.inputs['debs'];
  if (!debs) throw new Error('apt.install needs the `debs` input, which imgmake binds from imgmake.lock');
  const include = options.packages.map((p) => p.split('=')[0]!).join(',');
  const invocation = shell(ctx, [
    '[ -z "$(ls -A . | grep -v -x -e dev -e proc)" ] || die "apt.install bootstraps a tree: it must be the first stage of a pipeline without base:"',
    // A flat repository of exactly the locked .debs, with the mirror's priorities (the variant
    // selects by Priority, and the archive's overrides differ from the .debs' own fields).
    'mkdir /tmp/repo && ln -s "$INPUTS/debs" /tmp/repo/pool',
    '(cd /tmp/repo && apt-ftparchive packages pool "$INPUTS/debs/override" > Packages) 2> /tmp/ftparchive.log || { cat /tmp/ftparchive.log >&2; die "indexing the locked packages failed"; }',
    // dpkg runs chrooted: the repository must be copied in (copy://), not read from outside (file://).
    `mmdebstrap --mode=root --variant=${options.variant}${include ? ` --include=${q(include)}` : ''} \\`,
    `  --architectures=${options.architecture} \\`,
    '  --skip=chroot/mount --skip=check/qemu --skip=check/empty \\',
    `  --aptopt='Acquire::Languages "none"' \\`,
    `  --setup-hook='for l in fd stdin stdout stderr; do if [ -L "$1/dev/$l" ]; then rm "$1/dev/$l"; fi; done' \\`,
    `  '' . 'deb [trusted=yes] copy:///tmp/repo ./'`,
    // Per-machine secrets a postinst made (openssh-server): the booted image makes its own, with
    // a unit that runs before sshd while no host key exists (Debian's sshd does not make them).
    'rm -f etc/ssh/ssh_host_*_key etc/ssh/ssh_host_*_key.pub',
    'if [ -e usr/sbin/sshd ] && [ -d usr/lib/systemd/system ]; then',
    '  mkdir -p etc/systemd/system/ssh.service.wants etc/systemd/system/ssh.socket.wants',
    `  printf '%s\\n' ${SSH_KEYS_UNIT.map(q).join(' ')} > etc/systemd/system/${SSH_KEYS_NAME}`,
    `  ln -sfn /etc/systemd/system/${SSH_KEYS_NAME} etc/systemd/system/ssh.service.wants/${SSH_KEYS_NAME}`,
    `  ln -sfn /etc/systemd/system/${SSH_KEYS_NAME} etc/systemd/system/ssh.socket.wants/${SSH_KEYS_NAME}`,
    'fi',
    // Everything written now (maintainer scripts, dpkg's database) gets SOURCE_DATE_EPOCH.
    'find . -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +',
    'touch --no-dereference --date="@$SOURCE_DATE_EPOCH" .',
  ]);
  return { ...invocation, apiFilesystems: true };
};

const SSH_KEYS_NAME = 'imgmake-ssh-host-keys.service';
const SSH_KEYS_UNIT = [
  '[Unit]',
  'Description=Make the SSH host keys this image was built without',
  'Before=ssh.service ssh.socket',
  'ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key',
  '',
  '[Service]',
  'Type=oneshot',
  'ExecStart=/usr/bin/ssh-keygen -A',
  '',
  '[Install]',
  'WantedBy=ssh.service ssh.socket',
];

export default install;
