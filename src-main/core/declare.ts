/**
 * Declaring a queue through the core, the same for every connection that has
 * queues (the embedded broker, RabbitMQ): the arguments are checked by name
 * and type first, and a queue that dead-letters somewhere that does not exist
 * is never created silently. RabbitMQ drops a message whose dead-letter
 * exchange is missing or routes it nowhere, so expired and rejected messages
 * would vanish. With `createDeadLetter` the missing pieces are created first
 * (the exchange, a dead-letter queue and its binding); without it the answer
 * names each missing piece in `warnings`.
 */
import { TOPIC_CONFIG_NAMES } from '../broker/topic-config.js';
import { ApiError } from '../contract/errors.js';
import type { ParsedInput } from '../contract/operations.js';
import type { BindingInfo, QueueDeclareResult, QueueInfo } from '../contract/types.js';
import type { Args, Connector } from '../connectors/connector.js';
import { checkQueueArguments } from './queue-arguments.js';

type Declare = Args<'queues/declare'>;

function notFound(error: unknown): boolean {
  return (error as { code?: unknown })?.code === 'NOT_FOUND';
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (error) {
    if (notFound(error)) return false;
    throw error;
  }
}

function need<M extends keyof Connector>(c: Connector, method: M, what: string): NonNullable<Connector[M]> {
  const fn = c[method];
  if (typeof fn !== 'function') throw new ApiError('INVALID_ARGUMENT', `connection "${c.id}" (${c.info().kind}) cannot ${what}`, 'connectionId');
  return (fn as (...a: unknown[]) => unknown).bind(c) as NonNullable<Connector[M]>;
}

/** The routing key a binding needs for dead-lettered messages of `queue` to reach the dead-letter queue, by exchange type. */
function bindingKey(type: string, routingKey: string | undefined, queue: string): string | null {
  if (type === 'fanout') return '';
  if (type === 'topic') return routingKey ?? '#';
  if (type === 'direct') return routingKey ?? queue;
  return null;
}

export async function declareQueue(c: Connector, input: ParsedInput<'queues/declare'>, args: Declare): Promise<QueueDeclareResult> {
  checkQueueArguments(args.arguments, args.type);
  const { createDeadLetter, deadLetterQueue, type, ...rest } = args;
  const argumentsWithType = type ? { ...rest.arguments, 'x-queue-type': type } : rest.arguments;
  const plain: Declare = { ...rest, arguments: argumentsWithType };
  const dlx = argumentsWithType['x-dead-letter-exchange'];
  const dlrk = typeof argumentsWithType['x-dead-letter-routing-key'] === 'string' ? (argumentsWithType['x-dead-letter-routing-key'] as string) : undefined;
  const created: string[] = [];
  const warnings: string[] = [];
  if (typeof dlx === 'string') {
    const dlqName = deadLetterQueue ?? `${input.queue}.dlq`;
    const getQueue = need(c, 'getQueue', 'show queues');
    const makeQueue = async (name: string) => {
      await need(c, 'declareQueue', 'declare queues')({ queue: name, durable: input.durable, exclusive: false, autoDelete: false, arguments: {} });
      created.push(`queue "${name}"`);
    };
    const bind = async (source: string, destination: string, routingKey: string) => {
      await need(c, 'createBinding', 'create bindings')({ source, destination, destinationType: 'queue', routingKey, arguments: {} });
      created.push(`binding "${source}" → "${destination}"${routingKey ? ` (routing key "${routingKey}")` : ''}`);
    };
    if (dlx === '') {
      // The default exchange routes by queue name: the dead-letter routing key names the queue.
      if (dlrk !== undefined && dlrk !== input.queue && !(await exists(() => getQueue(dlrk)))) {
        if (createDeadLetter) await makeQueue(dlrk);
        else warnings.push(`dead-letter queue "${dlrk}" (x-dead-letter-routing-key on the default exchange) does not exist: dead-lettered messages would be dropped`);
      }
    } else {
      const getExchange = need(c, 'getExchange', 'show exchanges');
      const exchange = await getExchange(dlx).catch((error: unknown) => {
        if (notFound(error)) return null;
        throw error;
      });
      if (!exchange) {
        if (createDeadLetter) {
          // A fanout exchange of its own sends every dead-lettered message to the queue, whatever its routing key.
          await need(c, 'declareExchange', 'declare exchanges')({ exchange: dlx, type: 'fanout', durable: input.durable, autoDelete: false, internal: false, arguments: {} });
          created.push(`exchange "${dlx}" (fanout)`);
          if (!(await exists(() => getQueue(dlqName)))) await makeQueue(dlqName);
          await bind(dlx, dlqName, '');
        } else {
          warnings.push(`dead-letter exchange "${dlx}" does not exist: dead-lettered messages would be dropped (createDeadLetter creates it with a queue "${dlqName}")`);
        }
      } else {
        const bindings: BindingInfo[] = await need(c, 'listBindings', 'list bindings')();
        if (!bindings.some((b) => b.source === dlx)) {
          const key = bindingKey(exchange.type, dlrk, input.queue);
          if (createDeadLetter && key !== null) {
            if (!(await exists(() => getQueue(dlqName)))) await makeQueue(dlqName);
            await bind(dlx, dlqName, key);
          } else {
            warnings.push(`dead-letter exchange "${dlx}" has no bindings: dead-lettered messages would be dropped${createDeadLetter ? ` (a ${exchange.type} exchange: bind a queue to it yourself)` : ''}`);
          }
        }
      }
    }
  }
  const info: QueueInfo = await need(c, 'declareQueue', 'declare queues')(plain);
  return { ...info, ...(created.length > 0 ? { created } : {}), ...(warnings.length > 0 ? { warnings } : {}) };
}

/**
 * A topic's creation as its connection can carry it out. The embedded broker
 * keeps one copy of each partition and the topic configs of
 * broker/topic-config.ts (retention, max.message.bytes, compaction): any other
 * config is refused naming it, rather than ignored; the connection checks the
 * values before it creates anything.
 */
export function topicCreateArgs(c: Connector, a: Args<'topics/create'>): Args<'topics/create'> {
  if (c.info().kind !== 'embedded') return a;
  if (a.replicationFactor !== undefined && a.replicationFactor > 1) {
    throw new ApiError('INVALID_ARGUMENT', 'replicationFactor: the embedded broker keeps one copy of each partition', 'replicationFactor');
  }
  const { replicationFactor: _one, ...rest } = a;
  for (const key of Object.keys(a.configs ?? {})) {
    if (!(TOPIC_CONFIG_NAMES as readonly string[]).includes(key)) {
      throw new ApiError('INVALID_ARGUMENT', `configs.${key}: the embedded broker keeps only ${TOPIC_CONFIG_NAMES.join(', ')} of a topic`, `configs.${key}`);
    }
  }
  return rest;
}
