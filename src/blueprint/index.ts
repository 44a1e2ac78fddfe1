/**
 * Blueprints: composer's description of *what* goes into an image (packages, users, services,
 * files, filesystem sizes), read from TOML, JSON or YAML into a typed `Blueprint` whose every
 * value keeps its file:line:column.
 *
 *     const r = await readBlueprint('web.toml');       // parse + decode + check
 *     if (!r.ok) { print(r.error); exit(2) }
 *     const unsupported = checkSupport(r.value, 'tar'); // per image type (support.ts)
 *
 * This module reads and validates. It does not map a blueprint onto rules or stages, pick an
 * image definition, hash passwords or resolve packages: those are later phases, which take the
 * `Blueprint` and point their own failures at its `loc`s.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import { fail, ok, type Result } from '../result.js';
import { checkBlueprint } from './check.js';
import { decodeBlueprint } from './decode.js';
import { parseJson } from './json.js';
import { parseToml } from './toml.js';
import type { Blueprint, BlueprintFormat } from './types.js';
import { parseYaml } from './yaml.js';

export type * from './types.js';
export { checkSupport, IMAGE_TYPES, METADATA, OPTIONS, SECTIONS, SUPPORT, WHY_NOT, optionOf, shortName, type OptionInfo, type SupportOptions } from './support.js';
export { isCryptHash, parsePort } from './check.js';
export { parseDataSize } from './decode.js';
export { checkPath, DIRECTORIES_POLICY, FILES_POLICY, MOUNTPOINT_POLICY } from './policy.js';
export { parseToml } from './toml.js';

/** A blueprint file larger than this is refused (a blueprint is a page of text). */
export const MAX_BLUEPRINT_BYTES = 4 * 1024 * 1024;

/** `.toml` → toml, `.json` → json, `.yaml`/`.yml` → yaml; otherwise undefined. */
export function blueprintFormat(file: string): BlueprintFormat | undefined {
  switch (extname(file).toLowerCase()) {
    case '.toml':
      return 'toml';
    case '.json':
      return 'json';
    case '.yaml':
    case '.yml':
      return 'yaml';
    default:
      return undefined;
  }
}

/**
 * Parse, decode and check a blueprint's text. `file` is used for positions (make it absolute);
 * the format comes from its extension unless given. Diagnostics are sorted by position.
 */
export function parseBlueprint(text: string, file: string, format = blueprintFormat(file)): Result<Blueprint, Diagnostic[]> {
  if (!format) {
    return fail([diagnostic('bad-file', `cannot tell the format of blueprint ${file}`, undefined, 'name it NAME.toml, NAME.json or NAME.yaml')]);
  }
  const parsed = format === 'toml' ? parseToml(text, file) : format === 'json' ? parseJson(text, file) : parseYaml(text, file);
  if (!parsed.ok) return fail([parsed.error]);
  const decoded = decodeBlueprint(parsed.value, file, format);
  if (!decoded.blueprint) return fail(sortDiagnostics(decoded.diagnostics));
  const checked = checkBlueprint(decoded.blueprint);
  if (checked.length > 0) return fail(sortDiagnostics(checked));
  return ok(decoded.blueprint);
}

/** Read `file` (relative to the cwd) and `parseBlueprint` it. A missing or unreadable file is a `bad-file` diagnostic. */
export async function readBlueprint(file: string, format?: BlueprintFormat): Promise<Result<Blueprint, Diagnostic[]>> {
  const abs = resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? String(e)})`;
    return fail([diagnostic('bad-file', `blueprint ${file} ${why}`, undefined, 'check the path given to --blueprint')]);
  }
  if (bytes.length > MAX_BLUEPRINT_BYTES) {
    return fail([diagnostic('too-large', `blueprint ${file} is ${bytes.length} bytes, more than ${MAX_BLUEPRINT_BYTES}`, undefined, 'a blueprint is a page of text; put large file contents into the image some other way')]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail([diagnostic('bad-encoding', `blueprint ${file} is not UTF-8 text`, undefined, 'save it as UTF-8')]);
  }
  return parseBlueprint(text, abs, format ?? blueprintFormat(abs));
}

/** By file, line and column; diagnostics without a position first. */
export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => {
    if (!a.loc || !b.loc) return a.loc ? 1 : b.loc ? -1 : 0;
    return a.loc.file.localeCompare(b.loc.file) || a.loc.line - b.loc.line || a.loc.col - b.loc.col;
  });
}
