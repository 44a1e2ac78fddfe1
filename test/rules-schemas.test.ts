/**
 * Every rule's schema is a valid JSON Schema and compiles: builds skip the meta-schema check
 * and compile a rule's validator only when a definition uses it, so this is where a broken
 * schema is caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRules, newAjv } from '../src/rule.js';

test("every rule's options schema is valid JSON Schema, compiles, and has a summary", async () => {
  const rules = await loadRules();
  assert.ok(rules.size >= 20, `${rules.size} rules`);
  const ajv = newAjv({ validateSchema: true });
  for (const r of rules.values()) {
    assert.equal(ajv.validateSchema(r.schema.options), true, `${r.name}: ${JSON.stringify(ajv.errors)}`);
    assert.doesNotThrow(() => ajv.compile(r.schema.options), r.name);
    assert.equal(typeof r.validate, 'function', r.name);
    assert.match(r.digest, /^sha256:[0-9a-f]{64}$/, r.name);
    assert.ok(r.schema.summary.length > 0, r.name);
  }
});
