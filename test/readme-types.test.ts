/**
 * README.md's table of image types is generated from the catalog's index (src/catalog/types-doc.ts):
 * this test fails when a type is added, renamed or given another file without the README
 * following. `UPDATE_GOLDEN=1 node test/run.js readme-types` rewrites the section.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readCatalog } from '../src/catalog/index.js';
import { renderTypesTable, replaceTypesTable, TYPE_NOTES } from '../src/catalog/types-doc.js';
import { repoRoot } from './helpers/cli.js';

const README = join(repoRoot, 'README.md');

test('the README\'s image-type table is the catalog\'s, row for row', async () => {
  const images = await readCatalog();
  const table = renderTypesTable(images);
  const readme = readFileSync(README, 'utf8');
  const updated = replaceTypesTable(readme, table);
  assert.ok(updated !== undefined, 'README.md has no generated image-types section (its markers are in src/catalog/types-doc.ts)');
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(README, updated);
  assert.equal(readFileSync(README, 'utf8'), updated, 'README.md\'s table of image types is out of date: run `UPDATE_GOLDEN=1 node test/run.js readme-types`');
  for (const img of images) for (const t of img.types) assert.ok(table.includes(`| \`${t.name}\` | \`${t.filename}\` |`), t.name);
});

test('a type the notes do not know fails loudly; a README without the markers is refused', async () => {
  const [img] = await readCatalog();
  assert.throws(() => renderTypesTable([{ ...img!, types: [{ name: 'floppy', filename: 'disk.img' }] }]), /"floppy" has no line in TYPE_NOTES/);
  assert.equal(replaceTypesTable('# no markers\n', 'x'), undefined);
  assert.ok(Object.keys(TYPE_NOTES).includes('qcow2'));
});
