/**
 * The checks every SBOM test makes: the official SPDX 2.3 JSON schema
 * (test/fixtures/spdx/, its bytes checked), and what the schema cannot say.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { repoRoot } from './cli.js';

const SCHEMA_FILE = join(repoRoot, 'test', 'fixtures', 'spdx', 'spdx-schema-2.3.json');
const SCHEMA_SHA256 = '239208b7ac287b3cf5d9a9af23f9d69863971102a5e1587a27a398b43490b89b';

/** The official SPDX 2.3 schema, compiled (its bytes checked against the README's sha256). */
export function spdxValidator(): (doc: unknown) => string[] {
  const bytes = readFileSync(SCHEMA_FILE);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), SCHEMA_SHA256, 'test/fixtures/spdx/spdx-schema-2.3.json is the unmodified official schema');
  const validate = new Ajv({ allErrors: true }).compile(JSON.parse(bytes.toString('utf8')) as object);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
}

/** What the schema does not check: unique SPDXIDs, relationships and LicenseRefs that resolve. */
export function spdxConsistency(doc: any): string[] {
  const problems: string[] = [];
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const p of doc.packages) {
    if (ids.has(p.SPDXID)) problems.push(`${p.SPDXID} twice`);
    ids.add(p.SPDXID);
  }
  for (const r of doc.relationships) for (const id of [r.spdxElementId, r.relatedSpdxElement]) if (!ids.has(id)) problems.push(`relationship names ${id}`);
  const refs = new Set((doc.hasExtractedLicensingInfos ?? []).map((x: any) => x.licenseId));
  for (const p of doc.packages) for (const m of String(p.licenseDeclared).matchAll(/LicenseRef-[A-Za-z0-9.-]+/g)) if (!refs.has(m[0])) problems.push(`${p.name}: ${m[0]} is not defined`);
  return problems;
}

