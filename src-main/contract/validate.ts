import type { z } from 'zod';
import { ApiError } from './errors.js';

/**
 * Parses input against a schema and turns the first problem into an error that
 * names the field: `properties.priority: priority must be 0–255`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  checkInput(input);
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  let message = issue?.message ?? 'invalid input';
  if (issue?.code === 'unrecognized_keys') message = `unknown field(s): ${issue.keys.join(', ')}`;
  throw new ApiError('INVALID_ARGUMENT', field ? `${field}: ${message}` : message, field);
}

/** Deepest nesting of arrays and objects accepted in any input (AMQP tables nest, but not this far). */
export const MAX_INPUT_DEPTH = 64;

/**
 * What no schema can be trusted to catch, checked before any recursive code (the
 * schema, the storage codec) walks the input, and iteratively so that the check
 * itself cannot overflow:
 * - nesting deeper than MAX_INPUT_DEPTH (5,000 levels would overflow the stack);
 * - strings that are not valid Unicode (a lone UTF-16 surrogate): SQLite and UTF-8
 *   would store something other than what was sent, and two different names
 *   could become one.
 */
/** In `u` mode a surrogate pair is one code point: only a lone surrogate matches. */
const LONE_SURROGATE = /\p{Cs}/u;

function checkInput(input: unknown): void {
  const stack: Array<[unknown, number, string]> = [[input, 0, '']];
  while (stack.length > 0) {
    const [value, depth, path] = stack.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) throw new ApiError('INVALID_ARGUMENT', `${path || 'input'}: text is not valid Unicode (it holds a lone UTF-16 surrogate)`, path || undefined);
      continue;
    }
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (depth >= MAX_INPUT_DEPTH) throw new ApiError('INVALID_ARGUMENT', `${path.split('.')[0]}: input is nested more than ${MAX_INPUT_DEPTH} levels deep`, path.split('.')[0]);
    for (const [key, child] of Object.entries(value as object)) {
      const at = path ? `${path}.${key}` : key;
      if (LONE_SURROGATE.test(key)) throw new ApiError('INVALID_ARGUMENT', `${path || 'input'}: a key is not valid Unicode (it holds a lone UTF-16 surrogate)`, path || undefined);
      stack.push([child, depth + 1, at]);
    }
  }
}
