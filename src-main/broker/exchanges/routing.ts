/**
 * Routing a message to queues: through the default exchange by queue name,
 * otherwise through the matching bindings of each exchange type, following
 * exchange-to-exchange bindings (each exchange once) and, when nothing
 * matched, the alternate-exchange.
 */
import type { EngineContext, ExchangeState, QueueState } from '../context.js';
import type { FieldTable } from '../types.js';

export function route(ctx: EngineContext, ex: ExchangeState, rk: string, headers: FieldTable | undefined): Set<QueueState> {
  const out = new Set<QueueState>();
  if (ex.name === '') {
    // Default exchange: the queue named by the routing key (the hot path).
    const q = ctx.queues.get(rk);
    if (q) out.add(q);
    return out;
  }
  routeInto(ctx, ex, rk, headers, out, new Set());
  return out;
}

export function routeKeys(ctx: EngineContext, ex: ExchangeState, rk: string, extra: string[], headers: FieldTable | undefined): Set<QueueState> {
  const out = route(ctx, ex, rk, headers);
  for (const k of extra) for (const q of route(ctx, ex, k, headers)) out.add(q);
  return out;
}

export function routeInto(ctx: EngineContext, ex: ExchangeState, rk: string, headers: FieldTable | undefined, out: Set<QueueState>, visited: Set<string>): number {
  if (visited.has(ex.name)) return 0;
  visited.add(ex.name);
  const before = out.size;
  if (ex.name === '') {
    const q = ctx.queues.get(rk);
    if (q) out.add(q);
    return out.size - before;
  }
  for (const b of ex.kind.match(ex, rk, headers)) {
    if (b.destinationType === 'queue') {
      const q = ctx.queues.get(b.destination);
      if (q) out.add(q);
    } else {
      const d = ctx.exchanges.get(b.destination);
      if (d) routeInto(ctx, d, rk, headers, out, visited);
    }
  }
  if (out.size === before && ex.alternateExchange !== undefined) {
    const ae = ctx.exchanges.get(ex.alternateExchange);
    if (ae) routeInto(ctx, ae, rk, headers, out, visited);
  }
  return out.size - before;
}

export function reachable(ctx: EngineContext, ex: ExchangeState, seen = new Set<string>(), out = new Set<QueueState>()): Set<QueueState> {
  if (seen.has(ex.name)) return out;
  seen.add(ex.name);
  for (const b of ex.bindings) {
    if (b.destinationType === 'queue') {
      const q = ctx.queues.get(b.destination);
      if (q) out.add(q);
    } else {
      const d = ctx.exchanges.get(b.destination);
      if (d) reachable(ctx, d, seen, out);
    }
  }
  if (ex.alternateExchange !== undefined) {
    const ae = ctx.exchanges.get(ex.alternateExchange);
    if (ae) reachable(ctx, ae, seen, out);
  }
  return out;
}
