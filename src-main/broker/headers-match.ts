/**
 * Headers exchange matching. The binding's `x-match` is `all` (default),
 * `any`, `all-with-x` or `any-with-x`; binding keys starting with `x-` are
 * ignored except in the `-with-x` modes. A binding value of null (AMQP void)
 * only requires the header to be present.
 */
import { fieldEquals } from './codec.js';
import type { FieldTable } from './types.js';

export type XMatch = 'all' | 'any' | 'all-with-x' | 'any-with-x';

export function headersMatch(bindingArgs: FieldTable, headers: FieldTable | undefined): boolean {
  const mode = (bindingArgs['x-match'] ?? 'all') as XMatch;
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const any = mode === 'any' || mode === 'any-with-x';
  let checked = 0;
  for (const key of Object.keys(bindingArgs)) {
    if (key === 'x-match') continue;
    if (!withX && key.startsWith('x-')) continue;
    checked++;
    const want = bindingArgs[key];
    const present = headers !== undefined && Object.prototype.hasOwnProperty.call(headers, key);
    const ok = present && (want === null || want === undefined || fieldEquals(headers[key], want));
    if (any && ok) return true;
    if (!any && !ok) return false;
  }
  void checked;
  return !any;
}
