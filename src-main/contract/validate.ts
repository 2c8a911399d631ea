import type { z } from 'zod';
import { ApiError } from './errors.js';

/**
 * Parses input against a schema and turns the first problem into an error that
 * names the field: `properties.priority: priority must be 0–255`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  let message = issue?.message ?? 'invalid input';
  if (issue?.code === 'unrecognized_keys') message = `unknown field(s): ${issue.keys.join(', ')}`;
  throw new ApiError('INVALID_ARGUMENT', field ? `${field}: ${message}` : message, field);
}
