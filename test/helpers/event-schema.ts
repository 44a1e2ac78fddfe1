/**
 * Every `--json` line a test reads is checked against the shipped JSON Schema
 * (schema/events.schema.json) before the test sees it: so each test that reads events also
 * tests the schema, and an event the schema does not describe fails the test that caused it.
 *
 * Tests compare events without their envelope: `v` and `time` are checked here (present, the
 * current version, an ISO instant) and then left out of what the test gets, so
 * `deepEqual(event, { type: 'allow-path', dirs })` stays true whenever the event is written.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv';

const Ajv = AjvModule as unknown as typeof AjvModule.default;

// The repository's root, as helpers/cli.ts finds it (not imported: cli.ts imports this module).
export const EVENT_SCHEMA_FILE = join(resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..'), 'schema', 'events.schema.json');
export const eventSchema = JSON.parse(readFileSync(EVENT_SCHEMA_FILE, 'utf8')) as { definitions: Record<string, unknown> };
const validate = new Ajv({ discriminator: true, allErrors: true }).compile(eventSchema);

/** Whether `e` (with its envelope) fits the schema, and why not. */
export function eventErrors(e: unknown): string | undefined {
  if (validate(e)) return undefined;
  return (validate.errors ?? []).map((x) => `${x.instancePath || '/'} ${x.message ?? ''} ${JSON.stringify(x.params)}`).join('; ');
}

/** One `--json` line: parsed, checked against the schema (throws if it does not fit), without `v` and `time`. */
export function checkedEvent(line: string): Record<string, any> {
  const e = JSON.parse(line) as Record<string, any>;
  const why = eventErrors(e);
  if (why) throw new Error(`an event that does not fit schema/events.schema.json: ${why}\n  ${line}`);
  const { v: _v, time: _time, ...rest } = e;
  return rest;
}
