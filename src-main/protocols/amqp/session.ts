/**
 * What a channel needs of its connection and of the listener, and what the
 * listener needs of a channel, as interfaces: channel.ts, connection.ts and
 * server.ts each import this file rather than one another, so that the
 * modules depend one way (server → connection → channel).
 */
import type { Engine } from '../../broker/engine.js';
import type { MessageProperties } from '../../broker/types.js';
import type { Logger } from '../../ground/logger.js';
import type { ConnectionInfo } from '../listener.js';
import type { AmqpError } from './errors.js';
import type { FrameWriter } from './frame.js';
import type { BasicProperties, MethodInput, MethodName } from './generated/spec.js';
import type { StoredUser, UserStore } from './users.js';

export interface ContentHeader {
  classId: number;
  bodySize: number;
  properties: BasicProperties;
}

/** A channel holding a direct reply-to consumer. */
export interface ReplyTarget {
  deliverReply(routingKey: string, props: MessageProperties, body: Buffer): void;
}

export interface ServerSide {
  readonly users: UserStore;
  readonly logger: Logger;
  readonly consumerTimeoutMs: number;
  readonly maxBodyBytes: number;
  exclusiveOwner(vhost: string, queue: string): string | undefined;
  claimExclusive(vhost: string, queue: string, connection: string): void;
  releaseExclusive(vhost: string, queue: string): void;
  registerReply(ch: ReplyTarget): string;
  unregisterReply(token: string | null): void;
  replyChannel(token: string): ReplyTarget | undefined;
}

export interface ConnectionSide {
  readonly id: string;
  readonly info: ConnectionInfo;
  readonly server: ServerSide;
  readonly writer: FrameWriter;
  readonly channels: Map<number, unknown>;
  readonly vhost: string;
  readonly user: StoredUser | null;
  readonly frameMax: number;
  readonly client: { capabilities: Record<string, unknown> };
  engine(): Engine;
  send<N extends MethodName>(channel: number, name: N, args: MethodInput<N>): void;
  scheduleFlush(): void;
  flush(): void;
  closeWith(err: AmqpError): void;
  publishStarted(): void;
  publishDone(): void;
}
