/** The fanout exchange: every binding matches, whatever the routing key. */
import type { ExchangeKind } from '../context.js';

export const fanout: ExchangeKind = {
  type: 'fanout',
  bind() {},
  unbind() {},
  match(ex) {
    return ex.bindings;
  },
};
