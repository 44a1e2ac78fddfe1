/**
 * users.firstboot: a blueprint's users and SSH keys on an image whose /usr is read-only and
 * shared by every deployment (ostree). users.add edits the tree's /etc/passwd and makes homes;
 * on an ostree tree that would put the user database into /usr/etc (three-way merged at each
 * upgrade: a device whose /etc/passwd changed keeps its own, and a later commit's users never
 * arrive) and the homes with their keys into /usr/share/factory/var (copied once by
 * tmpfiles.d). So this rule only ships the data and a unit; the running system applies it:
 *
 *     /usr/lib/imgmake/users/             0755, root; read-only once deployed
 *         plan                            users.add's plan (users.awk's input), 0600
 *         keys-N                          each user's authorized_keys, 0644
 *         users.awk users.sh prelude.sh   users.add's own code, which applies the plan
 *         apply                           the unit's script, 0755
 *     /usr/lib/systemd/system/imgmake-users.service
 *     /usr/lib/systemd/system/multi-user.target.wants/imgmake-users.service → ../imgmake-users.service
 *
 * The unit runs when /var/lib/imgmake/users/DIGEST.done is missing (DIGEST: the sha256 of the
 * data), as root with / as "the tree": users.add's code, unchanged, edits /etc and makes the
 * homes (/home/NAME → /var/home/NAME through the link ostree.layout made), then the stamp is
 * written. It never writes /usr (read-only there anyway).
 *
 * It writes nothing else into the tree, so it may run before or after ostree.layout.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleInvoke } from '../../src/rule.js';
import { PRELUDE, q, shell } from '../_lib/sh.js';
import { keyFiles, plan, type UsersOptions } from '../_lib/users.js';

type Options = UsersOptions;

/** Where the data and scripts go, in the image. */
export const DATA_DIR = '/usr/lib/imgmake/users';
export const UNIT = 'imgmake-users.service';
export const STAMPS = '/var/lib/imgmake/users';

// users.add's code, read from its source folder (the compiled module lives in dist/).
const USERS_AWK = readFileSync(fileURLToPath(new URL('../../../rules/users.add/users.awk', import.meta.url)), 'utf8');
const USERS_SH = readFileSync(fileURLToPath(new URL('../../../rules/users.add/users.sh', import.meta.url)), 'utf8');

/** The unit's script: users.add's functions with / as the tree, then the stamp. */
function applyScript(digest: string): string {
  return [
    '#!/bin/sh',
    `# imgmake-users.service: the image's users, groups and SSH keys (${DATA_DIR}/plan) into`,
    '# /etc and the homes, by users.add\'s own code with / as the tree; once per distinct data.',
    `RUN=${DATA_DIR}`,
    '. "$RUN/prelude.sh"',
    'cd /',
    '. "$RUN/users.sh"',
    // shadow's lastchg: the day the users arrive.
    'SOURCE_DATE_EPOCH=$(date +%s)',
    'users_db',
    'users_homes',
    `mkdir -p ${STAMPS}`,
    `: > ${STAMPS}/${digest}.done`,
    `echo "imgmake-users: the image's users applied (${digest.slice(0, 12)})"`,
    '',
  ].join('\n');
}

function unitText(digest: string): string {
  return [
    '[Unit]',
    "Description=imgmake: the image's users and SSH keys into /etc and /var/home",
    'Documentation=file:/usr/lib/imgmake/users/apply',
    'After=local-fs.target systemd-tmpfiles-setup.service',
    'Before=systemd-user-sessions.service ssh.service',
    `ConditionPathExists=!${STAMPS}/${digest}.done`,
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    'PrivateTmp=yes',
    `ExecStart=${DATA_DIR}/apply`,
    'StandardOutput=journal+console',
    '',
  ].join('\n');
}

const usersFirstboot: RuleInvoke<Options> = (options, ctx) => {
  const keys = keyFiles('users.firstboot', options);
  const data: Record<string, string> = { plan: plan(options), ...keys, 'users.awk': USERS_AWK, 'users.sh': USERS_SH, 'prelude.sh': PRELUDE };
  const digest = createHash('sha256')
    .update(JSON.stringify(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest('hex');
  data['apply'] = applyScript(digest);
  const mode = (name: string): string => (name === 'plan' ? '0600' : name === 'apply' ? '0755' : '0644');
  const lib = '/usr/lib/systemd/system';
  return shell(
    ctx,
    [
      ...Object.keys(data).map((name) => `put ${q(`${ctx.run}/data-${name}`)} ${q(`${DATA_DIR}/${name}`)} ${mode(name)} 0:0`),
      `put ${q(`${ctx.run}/unit`)} ${q(`${lib}/${UNIT}`)} 0644 0:0`,
      `link ${q(`../${UNIT}`)} ${q(`${lib}/multi-user.target.wants/${UNIT}`)}`,
      `echo ${q(`users.firstboot: ${options.users.length} user(s), ${options.groups.length} group(s) in ${DATA_DIR}, applied by ${UNIT} once (${digest.slice(0, 12)})`)}`,
    ],
    { ...Object.fromEntries(Object.entries(data).map(([k, v]) => [`data-${k}`, v])), unit: unitText(digest) },
  );
};

export default usersFirstboot;
