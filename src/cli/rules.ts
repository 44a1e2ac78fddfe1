/**
 * `imgmake rules [NAME]`: the rules' JSON-Schemas are their documentation.
 */
import { jsonLine } from '../logging/index.js';
import { diagnostic, type Diagnostic } from '../diagnostic.js';
import type { RuleName } from '../ids.js';
import type { RuleRegistry } from '../rule.js';
import { fail, ok, type Result } from '../result.js';
import { closest } from '../load/suggest.js';

export function listRules(rules: RuleRegistry, json: boolean): string {
  const list = [...rules.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  if (json) return list.map((r) => jsonLine({ type: 'rule', name: r.name, summary: r.schema.summary, digest: r.digest })).join('\n');
  const width = Math.max(...list.map((r) => r.name.length));
  return list.map((r) => `${r.name.padEnd(width)}  ${r.schema.summary}`).join('\n');
}

type Schema = { type?: string | string[]; description?: string; default?: unknown; enum?: unknown[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema; pattern?: string };

export function describeRule(rules: RuleRegistry, name: string, json: boolean): Result<string, Diagnostic> {
  const r = rules.get(name as RuleName);
  if (!r) {
    const names = [...rules.keys()].sort();
    const guess = closest(name, names);
    return fail(diagnostic('unknown-rule', `no rule named ${JSON.stringify(name)}`, undefined, `${guess ? `did you mean ${JSON.stringify(guess)}? ` : ''}the rules are: ${names.join(', ')}`));
  }
  if (json) return ok(jsonLine({ ...r.schema, type: 'rule', name: r.name, digest: r.digest }));
  const lines = [`${r.name} — ${r.schema.summary}`];
  if (r.schema.description) lines.push('', r.schema.description);
  lines.push('', 'options:');
  lines.push(...describeProps(r.schema.options as Schema, '  '));
  const inputs = Object.entries(r.schema.inputs ?? {});
  if (inputs.length) {
    lines.push('', 'inputs:');
    for (const [n, s] of inputs) {
      lines.push(`  ${n === '*' ? '<any name>' : n}${s.required ? ' (required)' : ''}${s.kinds ? ` [${s.kinds.join(', ')}]` : ''}  ${s.description}`);
    }
  }
  return ok(lines.join('\n'));
}

function describeProps(s: Schema, indent: string): string[] {
  const out: string[] = [];
  for (const [k, p] of Object.entries(s.properties ?? {})) {
    const type = p.enum ? p.enum.map((v) => JSON.stringify(v)).join(' | ') : [p.type].flat().join(' | ') || 'any';
    const req = s.required?.includes(k) ? ' (required)' : '';
    const def = p.default !== undefined ? ` = ${JSON.stringify(p.default)}` : '';
    out.push(`${indent}${k}: ${type}${req}${def}${p.description ? `  ${p.description}` : ''}`);
    if (p.properties) out.push(...describeProps(p, `${indent}  `));
    if (p.items?.properties) out.push(...describeProps(p.items, `${indent}  - `.replace('- ', '  ')));
  }
  return out;
}
