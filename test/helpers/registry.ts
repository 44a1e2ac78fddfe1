/**
 * A private, REAL OCI registry for tests: Debian's `docker-registry` (distribution 2.8) with its
 * own config, a free port on 127.0.0.1 and its storage under a directory the test owns.
 *
 * With `token`, the registry demands the token flow real registries use: it answers 401 with a
 * `Bearer realm=…` challenge, and only accepts JWTs signed by a key whose certificate is in its
 * root bundle. The token service is a small server here (the seam: a registry's auth service),
 * which checks basic credentials, grants what the scope asks and records each request; the
 * registry itself verifies every token it is given. The token service is served over https
 * with a self-signed certificate for 127.0.0.1 (`ca`: give it to imgmake as
 * NODE_EXTRA_CA_CERTS), or, with `plainHttp`, over plain http: a realm on another origin than
 * the registry, where imgmake must not send credentials.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { canConnect, freePort } from './nginx.js';

export interface TokenRequest {
  scope: string[];
  service: string | null;
  /** The user of the basic credentials sent, or null for none. */
  user: string | null;
}

export interface Registry {
  port: number;
  /** Where it stores: blobs are under `docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`. */
  data: string;
  blobFile(sha256: string): string;
  /** Tags of `repository`, read from its storage; [] when it has none. */
  tags(repository: string): string[];
  /** What the token service was asked (with `token` only). */
  tokenRequests: TokenRequest[];
  /** The https token service's certificate (with `token`, unless `plainHttp`): pass as NODE_EXTRA_CA_CERTS. */
  ca?: string;
  stop(): Promise<void>;
}

export async function startRegistry(dir: string, o: { token?: { user: string; password: string; plainHttp?: boolean } } = {}): Promise<Registry> {
  assert.ok(existsSync('/usr/bin/docker-registry'), 'docker-registry is not installed: apt-get install docker-registry (these tests run a private instance of it)');
  mkdirSync(dir, { recursive: true });
  const data = join(dir, 'data');
  const tokenRequests: TokenRequest[] = [];
  let tokens: Server | undefined;
  let auth = '';
  let ca: string | undefined;
  if (o.token) {
    const t = await startTokenService(dir, o.token, tokenRequests);
    tokens = t.server;
    ca = t.ca;
    auth = `auth:
  token:
    realm: ${t.ca ? 'https' : 'http'}://127.0.0.1:${t.port}/token
    service: imgmake-test-registry
    issuer: imgmake-test-issuer
    rootcertbundle: ${t.cert}
`;
  }
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const conf = join(dir, 'config.yml');
    writeFileSync(
      conf,
      `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`,
    );
    const logFile = join(dir, 'registry.log');
    const proc: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    const errs: Buffer[] = [];
    proc.stderr!.on('data', (c: Buffer) => errs.push(c));
    let exited = false;
    proc.once('exit', () => (exited = true));
    const t0 = Date.now();
    while (!exited && Date.now() - t0 < 10_000 && !(await canConnect(port))) await new Promise((ok) => setTimeout(ok, 50));
    if (!exited && (await canConnect(port))) {
      const reg: Registry = {
        port,
        data,
        blobFile: (sha) => join(data, 'docker', 'registry', 'v2', 'blobs', 'sha256', sha.slice(0, 2), sha, 'data'),
        tags(repository) {
          const dirs = join(data, 'docker', 'registry', 'v2', 'repositories', repository, '_manifests', 'tags');
          return existsSync(dirs) ? readdirSync(dirs).sort() : [];
        },
        tokenRequests,
        ...(ca ? { ca } : {}),
        async stop() {
          tokens?.close();
          writeFileSync(logFile, Buffer.concat(errs));
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          const gone = once(proc, 'exit');
          proc.kill('SIGTERM');
          const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
          await gone;
          clearTimeout(timer);
        },
      };
      return reg;
    }
    proc.kill('SIGKILL');
    if (tries >= 3) {
      tokens?.close();
      throw new Error(`docker-registry did not start: ${Buffer.concat(errs).toString()}`);
    }
  }
}

/** A token service: RS256 JWTs carrying their certificate (x5c), which the registry trusts. */
async function startTokenService(
  dir: string,
  creds: { user: string; password: string; plainHttp?: boolean },
  requests: TokenRequest[],
): Promise<{ server: Server; port: number; cert: string; ca?: string }> {
  const keyFile = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', cert, '-days', '2', '-subj', '/CN=imgmake-test-issuer'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyFile));
  const der = new X509Certificate(readFileSync(cert)).raw.toString('base64');
  const b64 = (x: object) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const [user, password] = basic ? Buffer.from(basic[1]!, 'base64').toString().split(':') : [null, null];
    const scope = url.searchParams.getAll('scope');
    requests.push({ scope, service: url.searchParams.get('service'), user: user ?? null });
    if (user !== creds.user || password !== creds.password) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"wrong credentials"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scope.map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',') };
    });
    const head = b64({ typ: 'JWT', alg: 'RS256', x5c: [der] });
    const claims = b64({ iss: 'imgmake-test-issuer', sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 60, iat: now, jti: randomUUID(), access });
    const token = `${head}.${claims}.${sign('sha256', Buffer.from(`${head}.${claims}`), key).toString('base64url')}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  };
  let server: Server;
  let ca: string | undefined;
  if (creds.plainHttp) server = createHttpServer(serve);
  else {
    // The service's own certificate, for 127.0.0.1: self-signed, so it is its own CA.
    const tlsKey = join(dir, 'tls.key');
    ca = join(dir, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tlsKey, '-out', ca, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    server = createHttpsServer({ key: readFileSync(tlsKey), cert: readFileSync(ca) }, serve);
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, cert, ...(ca ? { ca } : {}) };
}
