/**
 * One factory per external system. The core creates a connector from a saved
 * configuration, and "Test connection" asks the same factory to try a
 * configuration without keeping it.
 */
import type { Factories } from './deps.js';
import { kafkaFactory } from './kafka/index.js';
import { kinesisFactory } from './kinesis/index.js';
import { pubsubFactory } from './pubsub/index.js';
import { rabbitmqFactory } from './rabbitmq/index.js';
import { redisFactory } from './redis/index.js';
import { snsFactory } from './sns/index.js';
import { sqsFactory } from './sqs/index.js';

export type { AuditLog, ConnectorDeps, ConnectorFactory, Factories } from './deps.js';

export const factories: Factories = {
  rabbitmq: rabbitmqFactory,
  kafka: kafkaFactory,
  sqs: sqsFactory,
  sns: snsFactory,
  kinesis: kinesisFactory,
  pubsub: pubsubFactory,
  redis: redisFactory,
};
