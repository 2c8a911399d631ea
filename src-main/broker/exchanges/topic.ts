/**
 * The topic exchange: a binding key is a pattern of dot-separated words,
 * `*` standing for one word and `#` for zero or more (see ../topic.ts, which
 * compiles a pattern once, when it is bound).
 */
import type { ExchangeKind } from '../context.js';
import { compileTopic } from '../topic.js';

export const topic: ExchangeKind = {
  type: 'topic',
  bind(_ex, b) {
    b.topic = compileTopic(b.routingKey);
  },
  unbind() {},
  match(ex, rk) {
    return ex.bindings.filter((b) => b.topic!(rk));
  },
};
