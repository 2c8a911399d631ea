/**
 * Amazon SNS as a connection. SNS's model is RabbitMQ's fanout exchange: a topic
 * hands each message to every subscription, a subscription's filter policy picks
 * by message attributes. So topics answer as exchanges (type `sns`, or `sns-fifo`
 * for a FIFO topic) and subscriptions as bindings from the topic to their endpoint
 * (an SQS queue by name, anything else as `protocol:endpoint`), with the
 * subscription's attributes (raw delivery, filter policy, redrive policy) as the
 * binding's arguments. Publishing names the topic as the exchange; headers become
 * message attributes, as for SQS.
 */
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  GetSubscriptionAttributesCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsCommand,
  ListTopicsCommand,
  PublishBatchCommand,
  SNSClient,
  SubscribeCommand,
  type PublishBatchRequestEntry,
  type Subscription,
} from '@aws-sdk/client-sns';
import { randomUUID } from 'node:crypto';
import { ApiError } from '../../contract/errors.js';
import type { SnsConnectionConfig } from '../../contract/operations.js';
import type { BindingInfo, Capability, ConnectionInfo, ExchangeInfo, PublishResult } from '../../contract/types.js';
import type { Args, Connector } from '../connector.js';
import type { ConnectorDeps } from '../deps.js';
import { mapLimit, targetOf } from '../aws/client.js';
import { AwsConnectionState } from '../aws/connection.js';
import { attributesFrom, queueNameOfArn } from '../sqs/messages.js';

const CAPABILITIES: Capability[] = ['exchanges', 'publish'];

const PUBLISH_NOTICE =
  'Publishing sends to one topic (the exchange names it); every subscription gets a copy, filtered by its filter policy on the message attributes. ' +
  'Headers become message attributes (at most 10); a FIFO topic needs a message group id.';

function topicNameOf(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

export class SnsConnector implements Connector {
  readonly id: string;
  private readonly client: SNSClient;
  private readonly state: AwsConnectionState;
  private readonly arns = new Map<string, string>();

  constructor(
    id: string,
    private readonly config: SnsConnectionConfig,
    private readonly deps: ConnectorDeps,
  ) {
    this.id = id;
    this.state = new AwsConnectionState(id, targetOf(config, 'sns'), config.readOnly);
    this.client = new SNSClient(this.state.clientConfig(config, { maxSockets: 16 }));
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      kind: 'sns',
      name: this.config.name,
      ...this.state.infoFields(),
      target: this.state.target,
      capabilities: [...CAPABILITIES],
      notices: { publish: PUBLISH_NOTICE },
    };
  }

  setReadOnly(readOnly: boolean): void {
    this.state.readOnly = readOnly;
  }

  async close(): Promise<void> {
    this.state.closed = true;
    this.client.destroy();
  }

  private writable(what: string): void {
    this.state.writable(what);
  }

  private call<T>(fn: () => Promise<T>, notFound?: { what: string; field: string }): Promise<T> {
    return this.state.call(fn, notFound);
  }

  // ---------------------------------------------------------------- topics

  private async topicArns(): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.call(() => this.client.send(new ListTopicsCommand(token ? { NextToken: token } : {})));
      for (const t of r.Topics ?? []) if (t.TopicArn) out.push(t.TopicArn);
      token = r.NextToken;
    } while (token);
    for (const arn of out) this.arns.set(topicNameOf(arn), arn);
    return out;
  }

  private async arnOf(topic: string, field: string): Promise<string> {
    if (topic.startsWith('arn:')) return topic;
    if (!this.arns.has(topic)) await this.topicArns();
    const arn = this.arns.get(topic);
    if (!arn) throw new ApiError('NOT_FOUND', `topic "${topic}" does not exist`, field);
    return arn;
  }

  private async exchangeInfo(arn: string): Promise<ExchangeInfo> {
    const r = await this.call(() => this.client.send(new GetTopicAttributesCommand({ TopicArn: arn })), { what: `topic "${topicNameOf(arn)}"`, field: 'exchange' });
    const attrs: Record<string, unknown> = { ...(r.Attributes ?? {}) };
    for (const k of ['Policy', 'DeliveryPolicy', 'EffectiveDeliveryPolicy']) {
      const v = attrs[k];
      if (typeof v === 'string') {
        try {
          attrs[k] = JSON.parse(v) as unknown;
        } catch {
          /* shown as text */
        }
      }
    }
    const fifo = r.Attributes?.FifoTopic === 'true' || arn.endsWith('.fifo');
    return { name: topicNameOf(arn), type: fifo ? 'sns-fifo' : 'sns', durable: true, autoDelete: false, internal: false, arguments: attrs };
  }

  async listExchanges(): Promise<ExchangeInfo[]> {
    const arns = await this.topicArns();
    const infos = await mapLimit(arns, 8, (arn) => this.exchangeInfo(arn).catch((e: unknown) => (e instanceof ApiError && e.code === 'NOT_FOUND' ? null : Promise.reject(e))));
    return infos.filter((x): x is ExchangeInfo => x !== null).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async getExchange(exchange: string): Promise<ExchangeInfo> {
    return this.exchangeInfo(await this.arnOf(exchange, 'exchange'));
  }

  async declareExchange(a: Args<'exchanges/declare'>): Promise<ExchangeInfo> {
    this.writable('create topics');
    if (a.type !== 'fanout') {
      throw new ApiError('INVALID_ARGUMENT', 'type: an SNS topic delivers to every subscription, as a fanout exchange does: use type "fanout"', 'type');
    }
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.arguments)) if (v !== null && v !== undefined) attributes[k] = typeof v === 'string' ? v : JSON.stringify(v);
    if (a.exchange.endsWith('.fifo')) attributes.FifoTopic = 'true';
    const r = await this.call(() => this.client.send(new CreateTopicCommand({ Name: a.exchange, Attributes: attributes })));
    if (r.TopicArn) this.arns.set(a.exchange, r.TopicArn);
    return this.exchangeInfo(r.TopicArn!);
  }

  async deleteExchange(a: Args<'exchanges/delete'>): Promise<void> {
    this.writable('delete topics');
    const arn = await this.arnOf(a.exchange, 'exchange');
    await this.call(() => this.client.send(new DeleteTopicCommand({ TopicArn: arn })));
    this.arns.delete(a.exchange);
  }

  // ---------------------------------------------------------------- subscriptions

  private async subscriptions(): Promise<Subscription[]> {
    const out: Subscription[] = [];
    let token: string | undefined;
    do {
      const r = await this.call(() => this.client.send(new ListSubscriptionsCommand(token ? { NextToken: token } : {})));
      out.push(...(r.Subscriptions ?? []));
      token = r.NextToken;
    } while (token);
    return out;
  }

  private async binding(s: Subscription): Promise<BindingInfo> {
    const args: Record<string, unknown> = { Protocol: s.Protocol, Endpoint: s.Endpoint, SubscriptionArn: s.SubscriptionArn };
    // A pending confirmation has no attributes to read yet.
    if (s.SubscriptionArn && s.SubscriptionArn.startsWith('arn:')) {
      try {
        const r = await this.client.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s.SubscriptionArn }));
        for (const [k, v] of Object.entries(r.Attributes ?? {})) {
          if (k === 'FilterPolicy' || k === 'RedrivePolicy' || k === 'DeliveryPolicy') {
            try {
              args[k] = JSON.parse(v) as unknown;
              continue;
            } catch {
              /* kept as text */
            }
          }
          if (!(k in args)) args[k] = v;
        }
      } catch (error) {
        this.deps.logger.warn('SNS subscription attributes could not be read', { connectionId: this.id, error: String(error) });
      }
    }
    const sqs = s.Protocol === 'sqs' && s.Endpoint?.startsWith('arn:');
    return {
      source: topicNameOf(s.TopicArn ?? ''),
      destination: sqs ? queueNameOfArn(s.Endpoint!) : `${s.Protocol}:${s.Endpoint}`,
      destinationType: 'queue',
      routingKey: '',
      arguments: args,
    };
  }

  async listBindings(): Promise<BindingInfo[]> {
    const subs = await this.subscriptions();
    return mapLimit(subs, 8, (s) => this.binding(s));
  }

  /**
   * Subscribes `destination` to the topic: an SQS queue's ARN, or any endpoint with
   * its protocol in `arguments.Protocol`; the other arguments are subscription
   * attributes (FilterPolicy, RawMessageDelivery…).
   */
  async createBinding(a: Args<'bindings/create'>): Promise<BindingInfo> {
    this.writable('subscribe');
    const arn = await this.arnOf(a.source, 'source');
    const { Protocol, ...rest } = a.arguments as { Protocol?: unknown } & Record<string, unknown>;
    const protocol = typeof Protocol === 'string' ? Protocol : a.destination.startsWith('arn:aws:sqs:') ? 'sqs' : null;
    if (!protocol) throw new ApiError('INVALID_ARGUMENT', 'arguments.Protocol: name the protocol (sqs, https, email, lambda…), or give an SQS queue ARN as the destination', 'arguments.Protocol');
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(rest)) if (v !== null && v !== undefined) attributes[k] = typeof v === 'string' ? v : JSON.stringify(v);
    const r = await this.call(() =>
      this.client.send(new SubscribeCommand({ TopicArn: arn, Protocol: protocol, Endpoint: a.destination, Attributes: attributes, ReturnSubscriptionArn: true })),
    );
    return this.binding({ TopicArn: arn, Protocol: protocol, Endpoint: a.destination, ...(r.SubscriptionArn ? { SubscriptionArn: r.SubscriptionArn } : {}) });
  }

  // ---------------------------------------------------------------- publish

  async publish(a: Args<'publish'>): Promise<PublishResult> {
    this.writable('publish');
    if (a.exchange === '') throw new ApiError('INVALID_ARGUMENT', 'exchange: name the topic to publish to', 'exchange');
    if (a.routingKey !== '') {
      throw new ApiError('INVALID_ARGUMENT', 'routingKey: SNS has no routing key; subscriptions pick messages by their attributes (filter policies)', 'routingKey');
    }
    if (a.bodyEncoding === 'base64') throw new ApiError('INVALID_ARGUMENT', 'bodyEncoding: an SNS message is text', 'bodyEncoding');
    if (a.delaySeconds !== undefined) throw new ApiError('INVALID_ARGUMENT', 'delaySeconds: SNS does not delay messages', 'delaySeconds');
    const attributes = attributesFrom(a.properties);
    const arn = await this.arnOf(a.exchange, 'exchange');
    const fifo = arn.endsWith('.fifo');
    if (fifo && !a.messageGroupId) throw new ApiError('INVALID_ARGUMENT', `messageGroupId: topic "${a.exchange}" is a FIFO topic: give a message group id`, 'messageGroupId');
    const entry = (i: number): PublishBatchRequestEntry => {
      const e: PublishBatchRequestEntry = { Id: String(i % 10), Message: a.body };
      if (Object.keys(attributes).length > 0) e.MessageAttributes = attributes as PublishBatchRequestEntry['MessageAttributes'];
      if (a.messageGroupId) e.MessageGroupId = a.messageGroupId;
      if (fifo) e.MessageDeduplicationId = a.deduplicationId ? (i === 0 ? a.deduplicationId : `${a.deduplicationId}-${i}`.slice(0, 128)) : randomUUID();
      return e;
    };
    let published = 0;
    let failure: string | null = null;
    const batches = Array.from({ length: Math.ceil(a.count / 10) }, (_, b) => b);
    await mapLimit(batches, fifo ? 1 : 16, async (b) => {
      if (failure) return;
      const entries = Array.from({ length: Math.min(10, a.count - b * 10) }, (_, k) => entry(b * 10 + k));
      const r = await this.call(() => this.client.send(new PublishBatchCommand({ TopicArn: arn, PublishBatchRequestEntries: entries })), {
        what: `topic "${a.exchange}"`,
        field: 'exchange',
      });
      published += r.Successful?.length ?? 0;
      const f = r.Failed?.[0];
      if (f && !failure) failure = `${f.Code}: ${f.Message ?? ''}`;
    });
    if (failure) throw new ApiError('INVALID_ARGUMENT', `SNS refused the message (${failure}); ${published} of ${a.count} were published before`, 'body');
    return { published, routed: { [a.exchange]: published }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true };
  }
}
