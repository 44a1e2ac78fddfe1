/**
 * What a remote URL means, checked without touching the network: used for `--remote`,
 * `IMGMAKE_REMOTE` and the definition's `cache: { remote: … }` alike.
 *
 *     http(s)://HOST[:PORT]/PATH          a remote-cache server (http.ts)
 *     oci://HOST[:PORT]/REPOSITORY        an OCI registry (oci.ts; plain HTTP for loopback hosts)
 *     oci+http://HOST[:PORT]/REPOSITORY   the same, plain HTTP
 */
import { parseOciUrl, type OciLocation } from './oci.js';

export interface RemoteUrl {
  /** As written, without a trailing slash. */
  url: string;
  oci?: OciLocation;
}

export const CREDENTIALS_ENV_HINT =
  'put credentials in the environment: IMGMAKE_REMOTE_AUTH="Bearer …" (the whole Authorization header), or IMGMAKE_REMOTE_USER and IMGMAKE_REMOTE_PASSWORD';

/**
 * The remote `text` names, or what is wrong with it and what to write instead; `shown` is the
 * text to print, its password (if it has one) replaced by `***`.
 */
export function parseRemoteUrl(text: string): RemoteUrl | { message: string; hint: string; shown: string } {
  const bad = (message: string, hint: string) => ({ message, hint, shown: redact(text) });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad('not a URL', 'write http(s)://HOST[:PORT]/PATH (a remote-cache server) or oci://HOST[:PORT]/REPOSITORY (a registry)');
  }
  if (url.username || url.password) {
    return bad('credentials do not belong in the URL (it is printed, kept in shell history and in the definition)', CREDENTIALS_ENV_HINT);
  }
  if (url.protocol === 'oci:' || url.protocol === 'oci+http:') {
    const where = parseOciUrl(url);
    if (typeof where === 'string') return bad(where, 'write oci://HOST[:PORT]/REPOSITORY, e.g. oci://127.0.0.1:5000/imgmake-cache');
    return { url: url.href.replace(/\/+$/, ''), oci: where };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return bad(`${url.protocol} is not a remote imgmake knows`, 'use http(s)://HOST/PATH (a remote-cache server) or oci://HOST/REPOSITORY (a registry)');
  }
  return { url: url.href.replace(/\/+$/, '') };
}

/** `scheme://user:password@host…` with the password as `***` (whatever else the text is). */
function redact(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}
