/**
 * The SNS connection against a real SNS server (fauxqs started by
 * tests/aws/aws.mjs, or SNS_ENDPOINT with SQS queues at the same endpoint or
 * SQS_ENDPOINT): topics as exchanges, subscriptions as bindings with their filter
 * policies, and a message published from Brokerdeck arriving in two subscribed
 * queues, one of them through a filter policy that lets only some through.
 */
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnsConnector, testSnsConnection } from '../../../src-main/connectors/sns/index.js';
import { useAwsServer } from '../../aws/servers.js';
import { awsConfig, testDeps, unique } from './helpers.js';

const sns = useAwsServer('sns');

let snsClient: SNSClient;
let sqsClient: SQSClient;
let connector: SnsConnector;

beforeAll(() => {
  const server = sns.server;
  if (!server) return;
  const credentials = 'profile' in server.credentials ? { profile: server.credentials.profile } : { credentials: server.credentials };
  snsClient = new SNSClient({ endpoint: server.endpoint, region: server.region, ...credentials });
  // fauxqs serves SQS on the same port; against AWS the queues are at SQS's own endpoint.
  sqsClient = new SQSClient({ endpoint: server.local ? server.endpoint : (process.env.SQS_ENDPOINT ?? server.endpoint), region: server.region, ...credentials });
  connector = new SnsConnector('c-sns', awsConfig('sns', server) as never, testDeps());
});

afterAll(async () => {
  await connector?.close();
  snsClient?.destroy();
  sqsClient?.destroy();
});

async function queue(name: string): Promise<{ url: string; arn: string }> {
  const r = await sqsClient.send(new CreateQueueCommand({ QueueName: name }));
  const a = await sqsClient.send(new GetQueueAttributesCommand({ QueueUrl: r.QueueUrl!, AttributeNames: ['QueueArn'] }));
  return { url: r.QueueUrl!, arn: a.Attributes!.QueueArn! };
}

async function bodies(url: string): Promise<string[]> {
  const r = await sqsClient.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  return (r.Messages ?? []).map((m) => m.Body ?? '');
}

describe('SNS connection', () => {
  it('tests the connection and tells an unreachable server apart', async (ctx) => {
    const server = sns.require(ctx);
    expect(await testSnsConnection(awsConfig('sns', server) as never)).toMatchObject({ ok: true });
    expect(await testSnsConnection({ ...(awsConfig('sns', server) as never as object), endpoint: 'http://127.0.0.1:9' } as never, 5_000)).toMatchObject({
      ok: false,
      problem: 'unreachable',
    });
  });

  it('lists topics and their subscriptions with filter policies, and delivers a publish to both queues, one through its filter', async (ctx) => {
    sns.require(ctx);
    const topicName = unique('orders');
    const topic = await snsClient.send(new CreateTopicCommand({ Name: topicName }));
    const allName = unique('all');
    const all = await queue(allName);
    const euName = unique('eu-only');
    const eu = await queue(euName);
    await snsClient.send(new SubscribeCommand({ TopicArn: topic.TopicArn!, Protocol: 'sqs', Endpoint: all.arn, Attributes: { RawMessageDelivery: 'true' } }));
    await snsClient.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn!,
        Protocol: 'sqs',
        Endpoint: eu.arn,
        Attributes: { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify({ region: ['eu'] }) },
      }),
    );

    const exchanges = await connector.listExchanges();
    expect(exchanges.find((e) => e.name === topicName)).toMatchObject({ type: 'sns', arguments: expect.objectContaining({ TopicArn: topic.TopicArn }) });
    const bindings = (await connector.listBindings()).filter((b) => b.source === topicName);
    expect(bindings.map((b) => b.destination).sort()).toEqual([allName, euName].sort());
    expect(bindings.find((b) => b.destination === euName)!.arguments).toMatchObject({ Protocol: 'sqs', FilterPolicy: { region: ['eu'] } });

    const base = { exchange: topicName, routingKey: '', bodyEncoding: 'utf8' as const, count: 1, mandatory: true };
    expect(await connector.publish({ ...base, body: 'to europe', properties: { headers: { region: 'eu' } } })).toMatchObject({ published: 1 });
    expect(await connector.publish({ ...base, body: 'to america', properties: { headers: { region: 'us' } } })).toMatchObject({ published: 1 });
    await expect.poll(async () => (await bodies(eu.url)).sort()).toEqual(['to europe']);
    const seen: string[] = [];
    await expect.poll(async () => (seen.push(...(await bodies(all.url))), seen.sort())).toEqual(['to america', 'to europe']);

    await expect(connector.publish({ ...base, exchange: unique('absent'), body: 'x', properties: {} })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'exchange' });
    await expect(connector.publish({ ...base, routingKey: 'eu', body: 'x', properties: {} })).rejects.toMatchObject({ field: 'routingKey' });
  });

  it('publishes in batches to a FIFO topic with a message group', async (ctx) => {
    sns.require(ctx);
    const topicName = `${unique('fifo')}.fifo`;
    const topic = await snsClient.send(new CreateTopicCommand({ Name: topicName, Attributes: { FifoTopic: 'true' } }));
    const q = await sqsClient.send(new CreateQueueCommand({ QueueName: `${unique('fifo-q')}.fifo`, Attributes: { FifoQueue: 'true' } }));
    const a = await sqsClient.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl!, AttributeNames: ['QueueArn'] }));
    await snsClient.send(new SubscribeCommand({ TopicArn: topic.TopicArn!, Protocol: 'sqs', Endpoint: a.Attributes!.QueueArn!, Attributes: { RawMessageDelivery: 'true' } }));
    const base = { exchange: topicName, routingKey: '', bodyEncoding: 'utf8' as const, mandatory: true, properties: {} };
    await expect(connector.publish({ ...base, body: 'x', count: 1 })).rejects.toMatchObject({ field: 'messageGroupId' });
    expect(await connector.publish({ ...base, body: 'in order', count: 12, messageGroupId: 'g' })).toMatchObject({ published: 12 });
    const got: string[] = [];
    await expect
      .poll(async () => {
        const r = await sqsClient.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl!, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
        const messages = r.Messages ?? [];
        got.push(...messages.map((m) => m.Body ?? ''));
        // A FIFO group stays locked while any of its messages is in flight: taken ones are deleted.
        if (messages.length > 0) {
          await sqsClient.send(new DeleteMessageBatchCommand({ QueueUrl: q.QueueUrl!, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        }
        return got.length;
      })
      .toBe(12);
  });
});
