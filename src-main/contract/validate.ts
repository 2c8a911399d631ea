import type { z } from 'zod';
import { ApiError } from './errors.js';

/**
 * Parses input against a schema and turns the first problem into an error that
 * names the field: `properties.priority: priority must be 0–255`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  checkDepth(input);
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
 * Refuses input nested deeper than MAX_INPUT_DEPTH before any recursive code
 * (the schema, the storage codec) walks it: 5,000 levels would overflow the stack.
 * Iterative, so the check itself cannot.
 */
function checkDepth(input: unknown): void {
  if (input === null || typeof input !== 'object') return;
  const stack: Array<[unknown, number]> = [[input, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > MAX_INPUT_DEPTH) throw new ApiError('INVALID_ARGUMENT', `input is nested more than ${MAX_INPUT_DEPTH} levels deep`, 'body');
    // Buffers and typed arrays come from the desktop bridge and are flat.
    if (ArrayBuffer.isView(value)) continue;
    for (const child of Object.values(value as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
}
