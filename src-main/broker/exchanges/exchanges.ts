/**
 * Exchanges and bindings: declaring with RabbitMQ's equivalence checks,
 * deleting (an auto-delete exchange goes with its last binding), listing;
 * which bindings a message follows is each exchange type's business
 * (direct.ts, fanout.ts, topic.ts, headers.ts).
 */
import { checkTable, inequivalent, parseExchangeArgs } from '../args.js';
import { canonicalJson, encodeJson, fieldEquals } from '../codec.js';
import { type BindingState, checkName, type EngineContext, type ExchangeState, findExchange, findQueue } from '../context.js';
import { BrokerError, invalid, shown } from '../errors.js';
import { exchangeKind } from './kinds.js';
import type { BindingInfo, BindingSpec, DestinationType, ExchangeInfo, ExchangeOptions, ExchangeType, FieldTable } from '../types.js';

export function newExchange(ctx: EngineContext, name: string, type: ExchangeType, durable: boolean, autoDelete: boolean, internal: boolean, args: FieldTable, builtin: boolean): ExchangeState {
  return {
    name,
    type,
    kind: exchangeKind(type),
    durable,
    autoDelete,
    internal,
    arguments: args,
    alternateExchange: parseExchangeArgs(args).alternateExchange,
    builtin,
    bindings: [],
    direct: new Map(),
  };
}

export function declareExchange(ctx: EngineContext, name: string, options: ExchangeOptions): ExchangeInfo {
  checkName(name, 'name', 'exchange');
  if (!options || !['direct', 'fanout', 'topic', 'headers'].includes(options.type)) {
    throw invalid('type', `expected "direct", "fanout", "topic" or "headers", got ${shown(options?.type)}`);
  }
  const args = checkTable(options.arguments, 'arguments');
  const parsed = parseExchangeArgs(args);
  const durable = options.durable ?? true;
  const autoDelete = options.autoDelete ?? false;
  const internal = options.internal ?? false;
  const existing = ctx.exchanges.get(name);
  if (existing) {
    if (existing.type !== options.type) throw inequivalent('exchange', name, 'type', options.type, existing.type);
    if (existing.durable !== durable) throw inequivalent('exchange', name, 'durable', durable, existing.durable);
    if (existing.autoDelete !== autoDelete) throw inequivalent('exchange', name, 'autoDelete', autoDelete, existing.autoDelete);
    if (existing.internal !== internal) throw inequivalent('exchange', name, 'internal', internal, existing.internal);
    if (!fieldEquals(existing.arguments['alternate-exchange'], args['alternate-exchange'])) {
      throw inequivalent('exchange', name, 'arguments.alternate-exchange', args['alternate-exchange'], existing.arguments['alternate-exchange']);
    }
    return exchangeInfo(ctx, existing);
  }
  if (name === '' || name.startsWith('amq.')) {
    throw new BrokerError('PRECONDITION_FAILED', `exchange names starting with "amq." (and the default exchange "") are reserved; choose another name`, 'name');
  }
  void parsed;
  ctx.gc.run(() => ctx.st.upsertExchange.run(name, options.type, durable ? 1 : 0, autoDelete ? 1 : 0, internal ? 1 : 0, encodeJson(args)));
  const ex = newExchange(ctx, name, options.type, durable, autoDelete, internal, args, false);
  ctx.exchanges.set(name, ex);
  ctx.topologyVersion++;
  return exchangeInfo(ctx, ex);
}

export function deleteExchange(ctx: EngineContext, name: string, options: { ifUnused?: boolean } = {}): void {
  const ex = findExchange(ctx, name, 'name');
  if (ex.builtin) throw new BrokerError('PRECONDITION_FAILED', `the built-in exchange ${JSON.stringify(name)} cannot be deleted`, 'name');
  const inbound = bindingsTo(ctx, 'exchange', name);
  if (options.ifUnused && (ex.bindings.length > 0 || inbound.length > 0)) {
    throw new BrokerError('PRECONDITION_FAILED', `exchange ${JSON.stringify(name)} is in use (${ex.bindings.length + inbound.length} bindings); delete without ifUnused to remove it anyway`, 'ifUnused');
  }
  ctx.gc.run(() => {
    for (const b of [...ex.bindings, ...inbound]) removeBinding(ctx, b, false);
    ctx.st.deleteExchange.run(name);
    ctx.audit.record('delete-exchange', name, '', 0, 'exchange', 'completed');
  });
  ctx.exchanges.delete(name);
  ctx.topologyVersion++;
}

export function listExchanges(ctx: EngineContext): ExchangeInfo[] {
  return [...ctx.exchanges.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((e) => exchangeInfo(ctx, e));
}

function exchangeInfo(ctx: EngineContext, e: ExchangeState): ExchangeInfo {
  return { name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: e.internal, arguments: { ...e.arguments } };
}

function bindingKey(ctx: EngineContext, spec: BindingSpec): { source: ExchangeState; destinationType: DestinationType; routingKey: string; args: FieldTable; argsKey: string } {
  if (!spec || typeof spec !== 'object') throw invalid('binding', `expected { source, destination, destinationType, routingKey }, got ${shown(spec)}`);
  checkName(spec.source, 'source', 'exchange');
  checkName(spec.destination, 'destination', 'destination');
  const destinationType = spec.destinationType ?? 'queue';
  if (destinationType !== 'queue' && destinationType !== 'exchange') throw invalid('destinationType', `expected "queue" or "exchange", got ${shown(destinationType)}`);
  const routingKey = spec.routingKey ?? '';
  if (typeof routingKey !== 'string' || Buffer.byteLength(routingKey) > 255) throw invalid('routingKey', `expected a string of at most 255 bytes, got ${shown(routingKey)}`);
  const args = checkTable(spec.arguments, 'arguments');
  if (spec.source === '') throw new BrokerError('PRECONDITION_FAILED', 'the default exchange routes by queue name and cannot be bound or unbound', 'source');
  const source = findExchange(ctx, spec.source, 'source');
  if (destinationType === 'queue') findQueue(ctx, spec.destination, 'destination');
  else findExchange(ctx, spec.destination, 'destination');
  if (source.type === 'headers') {
    const m = args['x-match'];
    if (m !== undefined && m !== 'all' && m !== 'any' && m !== 'all-with-x' && m !== 'any-with-x') {
      throw invalid('arguments.x-match', `expected "all", "any", "all-with-x" or "any-with-x", got ${shown(m)}`);
    }
  }
  return { source, destinationType, routingKey, args, argsKey: canonicalJson(args) };
}

export function bind(ctx: EngineContext, spec: BindingSpec): BindingInfo {
  const k = bindingKey(ctx, spec);
  const found = k.source.bindings.find((b) => b.destination === spec.destination && b.destinationType === k.destinationType && b.routingKey === k.routingKey && b.argsKey === k.argsKey);
  if (found) return bindingInfo(ctx, found);
  const b: BindingState = {
    source: spec.source,
    destination: spec.destination,
    destinationType: k.destinationType,
    routingKey: k.routingKey,
    arguments: k.args,
    argsKey: k.argsKey,
    topic: null,
  };
  ctx.gc.run(() => ctx.st.insertBinding.run(b.source, b.destination, b.destinationType, b.routingKey, b.argsKey, encodeJson(b.arguments)));
  attachBinding(ctx, k.source, b);
  ctx.topologyVersion++;
  return bindingInfo(ctx, b);
}

export function unbind(ctx: EngineContext, spec: BindingSpec): void {
  const k = bindingKey(ctx, spec);
  const found = k.source.bindings.find((b) => b.destination === spec.destination && b.destinationType === k.destinationType && b.routingKey === k.routingKey && b.argsKey === k.argsKey);
  if (!found) return;
  ctx.gc.run(() => removeBinding(ctx, found, true));
}

export function attachBinding(ctx: EngineContext, ex: ExchangeState, b: BindingState): void {
  ex.bindings.push(b);
  ex.kind.bind(ex, b);
}

/** Deletes a binding (inside a transaction); an auto-delete source goes with its last binding. */
export function removeBinding(ctx: EngineContext, b: BindingState, autoDelete: boolean): void {
  ctx.st.deleteBinding.run(b.source, b.destinationType, b.destination, b.routingKey, b.argsKey);
  const ex = ctx.exchanges.get(b.source);
  if (!ex) return;
  ex.bindings = ex.bindings.filter((x) => x !== b);
  ex.kind.unbind(ex, b);
  ctx.topologyVersion++;
  if (autoDelete && ex.autoDelete && !ex.builtin && ex.bindings.length === 0) {
    for (const inbound of bindingsTo(ctx, 'exchange', ex.name)) removeBinding(ctx, inbound, true);
    ctx.st.deleteExchange.run(ex.name);
    ctx.exchanges.delete(ex.name);
  }
}

export function bindingsTo(ctx: EngineContext, type: DestinationType, name: string): BindingState[] {
  const out: BindingState[] = [];
  for (const ex of ctx.exchanges.values()) for (const b of ex.bindings) if (b.destinationType === type && b.destination === name) out.push(b);
  return out;
}

export function listBindings(ctx: EngineContext): BindingInfo[] {
  const out: BindingInfo[] = [];
  // RabbitMQ lists the default exchange's implicit binding of every queue.
  for (const q of [...ctx.queues.keys()].sort()) out.push({ source: '', destination: q, destinationType: 'queue', routingKey: q, arguments: {} });
  const rest: BindingInfo[] = [];
  for (const ex of ctx.exchanges.values()) for (const b of ex.bindings) rest.push(bindingInfo(ctx, b));
  rest.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination) || a.routingKey.localeCompare(b.routingKey));
  return out.concat(rest);
}

function bindingInfo(ctx: EngineContext, b: BindingState): BindingInfo {
  return { source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey, arguments: { ...b.arguments } };
}
