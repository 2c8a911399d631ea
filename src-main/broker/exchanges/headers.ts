/**
 * The headers exchange: a binding's arguments are matched against the
 * message's headers (`x-match` all or any, with or without `x-` headers),
 * as ../headers-match.ts spells out; the routing key plays no part.
 */
import type { ExchangeKind } from '../context.js';
import { headersMatch } from '../headers-match.js';

export const headers: ExchangeKind = {
  type: 'headers',
  bind() {},
  unbind() {},
  match(ex, _rk, messageHeaders) {
    return ex.bindings.filter((b) => headersMatch(b.arguments, messageHeaders));
  },
};
