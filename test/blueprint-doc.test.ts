/**
 * docs/blueprint.md is generated from the support table: this test fails when the committed
 * file is out of date. `UPDATE_GOLDEN=1 node test/run.js blueprint-doc` rewrites it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderBlueprintDoc } from '../src/blueprint/doc.js';
import { OPTIONS } from '../src/blueprint/support.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const doc = join(repo, 'docs', 'blueprint.md');

test('docs/blueprint.md is generated from the support table and up to date', () => {
  const expected = renderBlueprintDoc();
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(doc, expected);
  assert.equal(readFileSync(doc, 'utf8'), expected, 'docs/blueprint.md is out of date: run `UPDATE_GOLDEN=1 node test/run.js blueprint-doc`');
});

test('the doc names every option and every image type', () => {
  const text = renderBlueprintDoc();
  for (const row of OPTIONS) assert.ok(text.includes(`\`${row.option.replace(/^customizations\./, '')}\``), row.option);
  assert.match(text, /\| qcow2 \| raw \| tar \|/);
  assert.match(text, /`filesystem` .*\| yes \| yes \| no: a tar archive has no disk/);
});
