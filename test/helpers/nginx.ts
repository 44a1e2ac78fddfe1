/**
 * A private, REAL nginx for tests: its own config file, `daemon off`, a free port on 127.0.0.1,
 * a document root and logs under a directory the test owns. `stop()` ends it (SIGQUIT, then
 * SIGKILL after 3 s).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface Nginx {
  port: number;
  /** The document root: `DIR/www`. */
  www: string;
  accessLog: string;
  /** Lines of the access log (nginx writes one after each response). */
  log(): string[];
  stop(): Promise<void>;
}

/** A `location` for startNginx's `server` argument: the whole document root takes PUT (a remote cache). */
export const DAV = `    location / {
      dav_methods PUT DELETE MKCOL;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
    }`;

export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return p;
}

export async function canConnect(p: number): Promise<boolean> {
  return new Promise((ok) => {
    const c = connect(p, '127.0.0.1');
    c.once('connect', () => (c.destroy(), ok(true)));
    c.once('error', () => ok(false));
  });
}

/** Starts nginx serving `dir/www`; `server` is extra directives inside its `server { }` block. */
export async function startNginx(dir: string, server = ''): Promise<Nginx> {
  assert.ok(existsSync('/usr/sbin/nginx'), 'nginx is not installed: apt-get install nginx (these tests run a private instance of it)');
  const www = join(dir, 'www');
  const accessLog = join(dir, 'access.log');
  mkdirSync(www, { recursive: true });
  chmodSync(dir, 0o755); // nginx's worker runs as an unprivileged user
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log ${accessLog};
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  default_type application/octet-stream;
  sendfile off;
  server {
    listen 127.0.0.1:${port};
    root ${www};
${server}
  }
}
`,
    );
    const proc: ChildProcess = spawn('/usr/sbin/nginx', ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: 'ignore' });
    let exited = false;
    proc.once('exit', () => (exited = true));
    const t0 = Date.now();
    while (!exited && Date.now() - t0 < 5000 && !(await canConnect(port))) await new Promise((ok) => setTimeout(ok, 50));
    if (!exited && (await canConnect(port))) {
      return {
        port,
        www,
        accessLog,
        log: () => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').filter(Boolean) : []),
        async stop() {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          const gone = once(proc, 'exit');
          proc.kill('SIGQUIT');
          const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
          await gone;
          clearTimeout(timer);
        },
      };
    }
    proc.kill('SIGKILL');
    if (tries >= 3) throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
  }
}
