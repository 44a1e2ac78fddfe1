/**
 * `imgmake push ARCHIVE oci://HOST[:PORT]/REPOSITORY[:TAG]`: sends an OCI image layout archive
 * (the `oci` image type's export) to a registry (src/push.ts), with the credentials the OCI
 * remote cache takes: IMGMAKE_REMOTE_AUTH, or IMGMAKE_REMOTE_USER and IMGMAKE_REMOTE_PASSWORD,
 * else what `docker login` stored for that host. A bad reference is a usage error (exit 2);
 * an unreadable archive or a registry's refusal, a runtime failure (exit 1).
 */
import { diagnostic } from '../diagnostic.js';
import { parsePushRef, pushArchive } from '../push.js';
import { remoteConfig } from '../remote/config.js';
import { fail, ok } from '../result.js';
import type { CommandResult } from './checkpoint.js';
import { EXIT_FAILED, EXIT_OK } from './exit.js';

export async function pushCommand(archive: string, ref: string, env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  const hint = 'write oci://HOST[:PORT]/REPOSITORY[:TAG], e.g. oci://127.0.0.1:5000/debian:12 (plain HTTP for a loopback host or oci+http://)';
  const parsed = parsePushRef(ref);
  if (!parsed.ok) return fail([diagnostic('usage', `imgmake push: ${ref}: ${parsed.error}`, undefined, hint)]);
  const u = new URL(ref);
  const config = remoteConfig({ remote: `${u.protocol}//${u.host}/${parsed.value.repository}` }, { ...env, IMGMAKE_REMOTE: undefined });
  if (!config.ok) return fail([config.error]);
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const r = await pushArchive({ archive, ref, say, ...(config.value?.authorization ? { authorization: config.value.authorization } : {}) });
  if (!r.ok) {
    say(`imgmake push: ${r.error}`);
    return ok(EXIT_FAILED);
  }
  process.stdout.write(`pushed ${r.value.reference}@${r.value.digest} (${r.value.uploaded} blobs uploaded, ${r.value.skipped} already there)\n`);
  return ok(EXIT_OK);
}
