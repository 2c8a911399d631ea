/** The direct exchange: a binding matches a routing key equal to its own; bindings are indexed by key. */
import type { ExchangeKind } from '../context.js';

const NONE: readonly never[] = [];

export const direct: ExchangeKind = {
  type: 'direct',
  bind(ex, b) {
    const list = ex.direct.get(b.routingKey);
    if (list) list.push(b);
    else ex.direct.set(b.routingKey, [b]);
  },
  unbind(ex, b) {
    const list = ex.direct.get(b.routingKey)?.filter((x) => x !== b) ?? [];
    if (list.length) ex.direct.set(b.routingKey, list);
    else ex.direct.delete(b.routingKey);
  },
  match(ex, rk) {
    return ex.direct.get(rk) ?? NONE;
  },
};
