/**
 * Expected failures are values: a function that can fail for reasons of the user's input
 * returns a Result instead of throwing. Throw only for broken invariants ("Internal error: …").
 */
export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/** For exhaustive switches: `default: return unreachable(x)` fails to compile when a case is missing. */
export function unreachable(x: never): never {
  throw new Error(`Internal error: unexpected value ${JSON.stringify(x)}`);
}
