/**
 * Reading a vhost's topology as RabbitMQ applies it: what a queue's effective
 * settings are once policies are merged with its arguments, and which queues
 * a dead-letter exchange routes to. Dead-lettering is often configured by
 * policy rather than by arguments, so both are read everywhere.
 */
import type { QueueInfo } from '../../contract/types.js';
import type { MgmtBinding, MgmtExchange, MgmtPolicy, MgmtQueue } from './management.js';

export type QueueType = NonNullable<QueueInfo['type']>;

export function queueType(q: Pick<MgmtQueue, 'type' | 'arguments'>): QueueType {
  const t = q.type ?? (q.arguments?.['x-queue-type'] as string | undefined);
  return t === 'quorum' || t === 'stream' ? t : 'classic';
}

export function policyDefinition(q: Pick<MgmtQueue, 'effective_policy_definition'>): Record<string, unknown> {
  const d = q.effective_policy_definition;
  // The management API renders an empty definition as [] on some versions.
  return d && !Array.isArray(d) && typeof d === 'object' ? d : {};
}

export interface DeadLetterSetting {
  exchange: string;
  /** null: messages keep the routing keys they were published with. */
  routingKey: string | null;
  from: 'arguments' | 'policy';
}

/**
 * A queue argument wins over a policy key for dead-lettering (RabbitMQ's rule
 * for these keys), so a policy only applies where the argument is absent.
 */
export function deadLetterSetting(q: Pick<MgmtQueue, 'arguments' | 'effective_policy_definition'>): DeadLetterSetting | null {
  const args = q.arguments ?? {};
  const policy = policyDefinition(q);
  const argExchange = args['x-dead-letter-exchange'];
  const polExchange = policy['dead-letter-exchange'];
  let exchange: string | null = null;
  let from: DeadLetterSetting['from'] = 'arguments';
  if (typeof argExchange === 'string') exchange = argExchange;
  else if (typeof polExchange === 'string') {
    exchange = polExchange;
    from = 'policy';
  }
  if (exchange === null) return null;
  const argKey = args['x-dead-letter-routing-key'];
  const polKey = policy['dead-letter-routing-key'];
  const routingKey = typeof argKey === 'string' ? argKey : typeof polKey === 'string' ? polKey : null;
  return { exchange, routingKey, from };
}

/**
 * The delivery limit of a quorum queue (argument or policy; the lower wins, as
 * with operator policies), or null when it has none. RabbitMQ 4.0 and later
 * apply a default of 20 when nothing is set.
 */
export function deliveryLimit(
  q: Pick<MgmtQueue, 'arguments' | 'effective_policy_definition' | 'type'>,
  serverMajor: number,
  extraPolicies: ReadonlyArray<Record<string, unknown>> = [],
): number | null {
  if (queueType(q) !== 'quorum') return null;
  const values = [q.arguments?.['x-delivery-limit'], policyDefinition(q)['delivery-limit'], ...extraPolicies.map((d) => d['delivery-limit'])]
    .map((v) => (typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : null))
    .filter((v): v is number => v !== null);
  if (values.length > 0) {
    const limit = Math.min(...values);
    // A negative limit means "unlimited" on the versions that accept it.
    return limit < 0 ? null : limit;
  }
  return serverMajor >= 4 ? 20 : null;
}

/**
 * The policy RabbitMQ applies to a queue, worked out from the policy list:
 * the matching one with the highest priority. The management API's own
 * `effective_policy_definition` only changes with the queue's next
 * statistics round (seconds later), which is too late for a safety check.
 */
export function matchingPolicy(queue: string, type: QueueType, policies: readonly MgmtPolicy[]): MgmtPolicy | null {
  const applies = new Set(['all', 'queues', type === 'classic' ? 'classic_queues' : type === 'quorum' ? 'quorum_queues' : 'streams']);
  let best: MgmtPolicy | null = null;
  for (const p of policies) {
    if (!applies.has(p['apply-to'])) continue;
    let re: RegExp;
    try {
      re = new RegExp(p.pattern);
    } catch {
      continue;
    }
    if (!re.test(queue)) continue;
    if (!best || p.priority > best.priority || (p.priority === best.priority && p.name > best.name)) best = p;
  }
  return best;
}

export function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const id = `${i},${j}`;
    const cached = memo.get(id);
    if (cached !== undefined) return cached;
    let result: boolean;
    if (i === p.length) result = j === k.length;
    else if (p[i] === '#') result = go(i + 1, j) || (j < k.length && go(i, j + 1));
    else if (j === k.length) result = false;
    else result = (p[i] === '*' || p[i] === k[j]) && go(i + 1, j + 1);
    memo.set(id, result);
    return result;
  };
  return go(0, 0);
}

export interface Topology {
  queues: ReadonlyArray<Pick<MgmtQueue, 'name' | 'arguments' | 'effective_policy_definition'>>;
  exchanges: ReadonlyArray<Pick<MgmtExchange, 'name' | 'type' | 'arguments'>>;
  bindings: ReadonlyArray<MgmtBinding>;
}

/**
 * The queues a message reaches when published to `exchange` with
 * `routingKey`; a null key (the message keeps its own keys, unknown here)
 * matches every binding, so a dead-letter queue is never missed. Headers and
 * plugin exchanges also match every binding, for the same reason.
 */
export function routeTargets(topology: Topology, exchange: string, routingKey: string | null, queueNames: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  if (exchange === '') {
    if (routingKey !== null && queueNames.has(routingKey)) out.add(routingKey);
    return out;
  }
  const byName = new Map(topology.exchanges.map((e) => [e.name, e]));
  const bySource = new Map<string, MgmtBinding[]>();
  for (const b of topology.bindings) {
    const list = bySource.get(b.source);
    if (list) list.push(b);
    else bySource.set(b.source, [b]);
  }
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const ex = byName.get(name);
    if (!ex) return;
    let matched = false;
    for (const b of bySource.get(name) ?? []) {
      let match: boolean;
      if (routingKey === null || ex.type === 'fanout' || ex.type === 'headers') match = true;
      else if (ex.type === 'direct') match = b.routing_key === routingKey;
      else if (ex.type === 'topic') match = topicMatches(b.routing_key, routingKey);
      else match = true;
      if (!match) continue;
      matched = true;
      if (b.destination_type === 'queue') out.add(b.destination);
      else visit(b.destination);
    }
    const alternate = ex.arguments?.['alternate-exchange'];
    if (!matched && typeof alternate === 'string') visit(alternate);
  };
  visit(exchange);
  return out;
}

/**
 * The routing keys a queue's messages can carry, when they keep their own
 * (no dead-letter routing key): its name (published through the default
 * exchange) and the keys of its bindings. null when some binding lets any key
 * in (fanout, headers, a topic pattern with wildcards), since then any key is
 * possible.
 */
export function arrivalKeys(queue: string, topology: Topology): string[] | null {
  const types = new Map(topology.exchanges.map((e) => [e.name, e.type]));
  const keys = new Set([queue]);
  for (const b of topology.bindings) {
    if (b.destination_type !== 'queue' || b.destination !== queue || b.source === '') continue;
    const type = types.get(b.source);
    if (type === 'direct') keys.add(b.routing_key);
    else if (type === 'topic' && !/(^|\.)[*#](\.|$)/.test(b.routing_key)) keys.add(b.routing_key);
    else return null;
  }
  return [...keys];
}

/** For each queue, the queues whose dead-lettering routes into it. */
export function deadLetterSources(topology: Topology): Map<string, string[]> {
  const names = new Set(topology.queues.map((q) => q.name));
  const sources = new Map<string, string[]>();
  const cache = new Map<string, Set<string>>();
  const route = (exchange: string, key: string | null) => {
    const id = `${exchange}\u0000${key ?? '\u0001'}`;
    let targets = cache.get(id);
    if (!targets) {
      targets = routeTargets(topology, exchange, key, names);
      cache.set(id, targets);
    }
    return targets;
  };
  for (const q of topology.queues) {
    const dl = deadLetterSetting(q);
    if (!dl) continue;
    const targets = new Set<string>();
    const keys = dl.routingKey !== null ? [dl.routingKey] : arrivalKeys(q.name, topology);
    for (const key of keys ?? [null]) for (const t of route(dl.exchange, key)) targets.add(t);
    for (const t of targets) {
      if (t === q.name) continue;
      const list = sources.get(t);
      if (list) list.push(q.name);
      else sources.set(t, [q.name]);
    }
  }
  for (const list of sources.values()) list.sort();
  return sources;
}

function rate(r: { rate?: number } | undefined): number {
  return typeof r?.rate === 'number' && Number.isFinite(r.rate) ? r.rate : 0;
}

export function toQueueInfo(q: MgmtQueue, deadLetterFor: string[]): QueueInfo {
  const definition = policyDefinition(q);
  const policyName = q.policy ?? q.operator_policy ?? null;
  const ready = q.messages_ready ?? 0;
  const unacked = q.messages_unacknowledged ?? 0;
  return {
    name: q.name,
    type: queueType(q),
    durable: q.durable ?? true,
    autoDelete: q.auto_delete ?? false,
    exclusive: q.exclusive ?? false,
    arguments: q.arguments ?? {},
    policy: policyName || Object.keys(definition).length > 0 ? { name: policyName ?? '', definition } : null,
    messages: q.messages ?? ready + unacked,
    ready,
    unacked,
    delayed: 0,
    bytes: q.message_bytes ?? 0,
    consumers: q.consumers ?? 0,
    deadLetterFor,
    rates: {
      publish: rate(q.message_stats?.publish_details),
      deliver: rate(q.message_stats?.deliver_get_details ?? q.message_stats?.deliver_details),
      ack: rate(q.message_stats?.ack_details),
      redeliver: rate(q.message_stats?.redeliver_details),
    },
  };
}

/** Consumer utilisation as a 0–1 fraction (RabbitMQ renamed it consumer_capacity in 3.10+). */
export function utilisation(q: MgmtQueue): number {
  const u = q.consumer_capacity ?? q.consumer_utilisation;
  return typeof u === 'number' && Number.isFinite(u) ? u : 0;
}
