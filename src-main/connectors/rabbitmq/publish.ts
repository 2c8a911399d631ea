/**
 * Publishing N copies to RabbitMQ on one confirm channel, pipelined: copies
 * go out back to back while up to PUBLISH_WINDOW confirms are outstanding,
 * so a large publish runs at the speed of plain amqplib instead of one round
 * trip per copy. Socket back-pressure is honoured (amqplib's `publish`
 * returns false until 'drain'). A cancel stops sending, waits for the
 * confirms of what was sent and reports those counts.
 */
import type { ChannelModel, Options } from 'amqplib';
import { ApiError } from '../../contract/errors.js';
import type { MessageProperties, PublishResult } from '../../contract/types.js';
import type { MessageTemplate } from '../../ground/placeholders.js';
import type { Args, PublishControl } from '../connector.js';
import { closeQuietly, openConfirmChannel, toApiError } from './amqp.js';

/** Confirms a publish may have outstanding before it waits: bounds memory on a million-message publish. */
export const PUBLISH_WINDOW = 5_000;

export const PUBLISH_NOTICE =
  'RabbitMQ confirms a publish without saying which queues received it: "routed" counts copies that were neither returned as unroutable nor refused, ' +
  'under the exchange name (or, on the default exchange, the queue name).';

/** The contract's message properties as amqplib publish options. */
export function publishOptions(p: MessageProperties, mandatory: boolean): Options.Publish {
  const o: Options.Publish = { mandatory };
  if (p.contentType !== undefined) o.contentType = p.contentType;
  if (p.contentEncoding !== undefined) o.contentEncoding = p.contentEncoding;
  if (p.headers !== undefined) o.headers = p.headers;
  if (p.deliveryMode !== undefined) o.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) o.priority = p.priority;
  if (p.correlationId !== undefined) o.correlationId = p.correlationId;
  if (p.replyTo !== undefined) o.replyTo = p.replyTo;
  if (p.expiration !== undefined) o.expiration = p.expiration;
  if (p.messageId !== undefined) o.messageId = p.messageId;
  if (p.timestamp !== undefined) o.timestamp = p.timestamp;
  if (p.type !== undefined) o.type = p.type;
  if (p.userId !== undefined) o.userId = p.userId;
  if (p.appId !== undefined) o.appId = p.appId;
  return o;
}

export interface PublishTarget {
  model: ChannelModel;
  scrub: (s: string) => string;
  /** The error text for a missing exchange. */
  exchangeMissing: string | undefined;
}

export async function publishCopies(
  target: PublishTarget,
  a: Args<'publish'>,
  template: MessageTemplate<MessageProperties>,
  control?: PublishControl,
): Promise<PublishResult> {
  let ch: Awaited<ReturnType<typeof openConfirmChannel>>;
  try {
    ch = await openConfirmChannel(target.model);
  } catch (error) {
    throw toApiError(error, target.scrub);
  }
  // Options are built once unless headers or ids change per copy.
  const fixedOptions = template.propertiesVary ? null : publishOptions(a.properties, a.mandatory);
  let returned = 0;
  let nacked = 0;
  let confirmed = 0;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (done() || failure) resolve();
        else wake = check;
      };
      check();
    });
  ch.on('return', () => {
    returned++;
  });
  ch.on('error', (e: unknown) => {
    failure = failure ?? e;
    poke();
  });
  ch.on('close', () => {
    failure = failure ?? new Error('Channel closed');
    poke();
  });
  let blocked = false;
  ch.on('drain', () => {
    blocked = false;
    poke();
  });
  const onConfirm = (err: unknown) => {
    confirmed++;
    if (err) nacked++;
    if (control && (confirmed & 255) === 0) control.progress(sent, confirmed);
    poke();
  };
  let sent = 0;
  try {
    for (; sent < a.count && !failure && !control?.signal.aborted; sent++) {
      const copy = template.copy(sent + 1);
      const ok = ch.publish(a.exchange, a.routingKey, copy.body, fixedOptions ?? publishOptions(copy.properties, a.mandatory), onConfirm);
      if (!ok) {
        // The socket buffer is full: wait until it drains.
        blocked = true;
        await until(() => !blocked);
      }
      if (sent + 1 - confirmed >= PUBLISH_WINDOW) {
        const goal = sent + 1 - PUBLISH_WINDOW / 2;
        await until(() => confirmed >= goal);
      }
    }
    await until(() => confirmed >= sent);
    if (failure) throw failure;
    control?.progress(sent, confirmed);
    const routedCount = sent - returned - nacked;
    const label = a.exchange === '' ? a.routingKey : a.exchange;
    return {
      published: sent,
      routed: routedCount > 0 ? { [label]: routedCount } : {},
      returned,
      rejected: nacked,
      deduplicated: 0,
      confirmed: nacked === 0,
    };
  } catch (error) {
    const e = toApiError(error, target.scrub, target.exchangeMissing);
    const ok = confirmed - nacked - returned;
    // A failure part-way through a large publish says how far it got.
    if (a.count > 1 && ok > 0) throw new ApiError(e.code, `${e.message} (${ok} of ${a.count} copies were confirmed before that)`, e.field);
    throw e;
  } finally {
    await closeQuietly(ch);
  }
}
