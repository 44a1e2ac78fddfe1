/**
 * Inline inputs: a project file or folder carried inside a definition, so that a manifest
 * (`build --with-manifest`) is one self-contained file. In YAML:
 *
 *     inputs:
 *       motd: { inline: { type: file, mode: "0644", base64: "SGVsbG8K" } }
 *       site: { inline: { type: dir, mode: "0755", entries: [
 *               { path: index.html, type: file, mode: "0644", base64: "…" },
 *               { path: img, type: dir, mode: "0755" },
 *               { path: img/logo, type: link, target: ../logo.png } ] } }
 *
 * Everything the input's key reads (key.ts `digestPath`: the bytes, the permission bits, the
 * names, types and link targets of a folder's entries) is carried, nothing else, so an inline
 * input has the key its project file had. At load it is written out once, content-addressed,
 * to `.imgmake/inline/<sha256>/content` beside the definition (the temporary directory renamed
 * into place: a killed load leaves nothing used; a copy that no longer holds exactly the inline
 * content is written again), and from there it is an ordinary `file:` input: the sandbox binds it, watch ignores it (it never changes), the key digests it.
 *
 * Base64, never text: a definition's strings have `${…}` substituted, file contents must not.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson, sha256 } from '../key.js';
import { fail, ok, type Result } from '../result.js';
import { OWNER_RE, ownedName, sweep } from '../store/orphans.js';

export type InlineEntry =
  | { path: string; type: 'file'; mode: string; base64: string }
  | { path: string; type: 'dir'; mode: string }
  | { path: string; type: 'link'; target: string };

export type Inline = { type: 'file'; mode: string; base64: string } | { type: 'dir'; mode: string; entries: InlineEntry[] };

/** The largest inline input (decoded), so a definition stays a definition. */
export const MAX_INLINE_BYTES = 256 * 1024 * 1024;

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** A project file or folder as an inline input (entries sorted by path, as the key walks them). */
export function inlineOf(path: string): Result<Inline, string> {
  const st = lstatSync(path);
  if (st.isFile()) return ok({ type: 'file', mode: octal(st.mode), base64: readFileSync(path).toString('base64') });
  if (!st.isDirectory()) return fail(`${path} is neither a file nor a folder`);
  const entries: InlineEntry[] = [];
  const walk = (dir: string, rel: string): string | undefined => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const s = lstatSync(p);
      if (s.isDirectory()) {
        entries.push({ path: r, type: 'dir', mode: octal(s.mode) });
        const bad = walk(p, r);
        if (bad) return bad;
      } else if (s.isSymbolicLink()) entries.push({ path: r, type: 'link', target: readlinkSync(p) });
      else if (s.isFile()) entries.push({ path: r, type: 'file', mode: octal(s.mode), base64: readFileSync(p).toString('base64') });
      else return `${p} is neither a file, a folder nor a symlink: it cannot be carried in a manifest`;
    }
    return undefined;
  };
  const bad = walk(path, '');
  if (bad) return fail(bad);
  return ok({ type: 'dir', mode: octal(st.mode), entries });
}

const MODE = /^0?[0-7]{3,4}$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Checks an `inline:` value as read from YAML (plain JS); the message says what is wrong. */
export function parseInline(v: unknown): Result<Inline, string> {
  const o = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('"inline:" must be a mapping: { type: file|dir, mode, base64 | entries }');
  const mode = (x: unknown, what: string): string | undefined => (typeof x === 'string' && MODE.test(x) ? undefined : `${what}: "mode" must be an octal string like "0644"`);
  const data = (x: unknown, what: string): string | undefined => (typeof x === 'string' && B64.test(x) ? undefined : `${what}: "base64" must be base64 text`);
  const only = (x: Record<string, unknown>, keys: string[], what: string): string | undefined => {
    const extra = Object.keys(x).find((k) => !keys.includes(k));
    return extra === undefined ? undefined : `${what}: unknown key "${extra}"`;
  };
  let size = 0;
  if (o.type === 'file') {
    const bad = only(o, ['type', 'mode', 'base64'], 'inline file') ?? mode(o.mode, 'inline file') ?? data(o.base64, 'inline file');
    if (bad) return fail(bad);
    if ((o.base64 as string).length * 0.75 > MAX_INLINE_BYTES) return fail('an inline file is larger than 256 MiB');
    return ok(o as unknown as Inline);
  }
  if (o.type !== 'dir') return fail('"inline:" needs "type: file" or "type: dir"');
  const bad = only(o, ['type', 'mode', 'entries'], 'inline folder') ?? mode(o.mode, 'inline folder');
  if (bad) return fail(bad);
  if (!Array.isArray(o.entries)) return fail('inline folder: "entries" must be a list');
  const seen = new Set<string>();
  // Entries may only go into folders declared before them: never through a link (a link named
  // like a folder would carry the write out of the copy, onto the host).
  const dirs = new Set<string>();
  for (const [i, e] of (o.entries as unknown[]).entries()) {
    const x = e as Record<string, unknown>;
    const what = `inline folder, entries[${i}]`;
    if (typeof e !== 'object' || e === null) return fail(`${what}: must be a mapping`);
    const p = x.path;
    if (typeof p !== 'string' || !p || p.split('/').some((c) => c === '' || c === '.' || c === '..') || /[\x00]/.test(p)) return fail(`${what}: "path" must be a relative path without "." or ".." components`);
    if (seen.has(p)) return fail(`${what}: "${p}" twice`);
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : undefined;
    if (parent !== undefined && !seen.has(parent)) return fail(`${what}: "${p}" comes before its folder "${parent}"`);
    if (parent !== undefined && !dirs.has(parent)) return fail(`${what}: "${p}" is inside "${parent}", which is not a folder (type dir)`);
    seen.add(p);
    if (x.type === 'dir') dirs.add(p);
    const err =
      x.type === 'file'
        ? (only(x, ['path', 'type', 'mode', 'base64'], what) ?? mode(x.mode, what) ?? data(x.base64, what))
        : x.type === 'dir'
          ? (only(x, ['path', 'type', 'mode'], what) ?? mode(x.mode, what))
          : x.type === 'link'
            ? (only(x, ['path', 'type', 'target'], what) ?? (typeof x.target === 'string' && x.target && !x.target.includes('\0') ? undefined : `${what}: "target" must be a path`))
            : `${what}: "type" must be file, dir or link`;
    if (err) return fail(err);
    if (x.type === 'file') size += (x.base64 as string).length * 0.75;
    if (size > MAX_INLINE_BYTES) return fail('an inline folder is larger than 256 MiB');
  }
  return ok(o as unknown as Inline);
}

/**
 * Writes INLINE under `DIR/.imgmake/inline/<sha256 of it>/content` unless it is there already;
 * returns that path. Modes are set explicitly (never the umask's).
 */
export function materialize(inline: Inline, dir: string): string {
  const home = join(dir, '.imgmake', 'inline', sha256(canonicalJson(inline)));
  const content = join(home, 'content');
  if (existsSync(content)) {
    // Written before; used only while it still holds exactly this (an edit there would make
    // another key, so another image): else written again.
    const now = inlineOf(content);
    if (now.ok && canonicalJson(now.value) === canonicalJson(inline)) return content;
    rmSync(home, { recursive: true, force: true });
  }
  const parent = dirname(home);
  mkdirSync(parent, { recursive: true });
  // What a load killed while writing left here (named after its dead process), cleared in the
  // background: only a gone process's directories are touched, never ours.
  void sweep(parent, new RegExp(`^\\.new-(${OWNER_RE})$`)).catch(() => undefined);
  const tmp = join(parent, ownedName('.new-'));
  mkdirSync(tmp);
  try {
    const put = (p: string, e: { type: 'file'; mode: string; base64: string } | { type: 'dir'; mode: string } | { type: 'link'; target: string }): void => {
      if (e.type === 'file') {
        writeFileSync(p, Buffer.from(e.base64, 'base64'));
        chmodSync(p, parseInt(e.mode, 8));
      } else if (e.type === 'dir') mkdirSync(p);
      else symlinkSync(e.target, p);
    };
    const at = join(tmp, 'content');
    put(at, inline.type === 'file' ? inline : { type: 'dir', mode: inline.mode });
    if (inline.type === 'dir') {
      for (const e of inline.entries) put(join(at, ...e.path.split('/')), e);
      // Folder modes last, deepest first: a read-only folder made early could not be filled.
      for (const e of [...inline.entries].reverse()) if (e.type === 'dir') chmodSync(join(at, ...e.path.split('/')), parseInt(e.mode, 8));
      chmodSync(at, parseInt(inline.mode, 8));
    }
    try {
      renameSync(tmp, home);
    } catch (e) {
      // Another load put the same content in place first: theirs is the same.
      if (!existsSync(content)) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return content;
}
