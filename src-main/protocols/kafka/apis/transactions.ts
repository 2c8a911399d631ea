/**
 * Kafka transactions over the wire: InitProducerId with a transactional id,
 * AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn,
 * DescribeTransactions and ListTransactions, and what Produce, Fetch and
 * ListOffsets ask of them. This broker (node 0) is the transaction
 * coordinator of every transactional id; the state and the markers are the
 * engine's (broker/transactions.ts).
 *
 * Errors are Kafka's: an unknown transactional id or a producer id not its
 * own is INVALID_PRODUCER_ID_MAPPING, an older epoch PRODUCER_FENCED (before
 * KIP-588's versions, INVALID_PRODUCER_EPOCH), a request out of turn
 * INVALID_TXN_STATE, a timeout above 900000 ms INVALID_TRANSACTION_TIMEOUT.
 */
import type { BatchHeader } from '../codec/record-batch.js';
import type { Encodable } from '../codec/primitives.js';
import { ERR } from '../errors.js';
import type { AddOffsetsToTxnRequest } from '../generated/AddOffsetsToTxnRequest.js';
import type { AddPartitionsToTxnRequest, AddPartitionsToTxnTopic } from '../generated/AddPartitionsToTxnRequest.js';
import type { AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult } from '../generated/AddPartitionsToTxnResponse.js';
import type { DescribeTransactionsRequest } from '../generated/DescribeTransactionsRequest.js';
import type { DescribeTransactionsResponse } from '../generated/DescribeTransactionsResponse.js';
import type { EndTxnRequest } from '../generated/EndTxnRequest.js';
import type { InitProducerIdRequest } from '../generated/InitProducerIdRequest.js';
import type { ListTransactionsRequest } from '../generated/ListTransactionsRequest.js';
import type { ListTransactionsResponse } from '../generated/ListTransactionsResponse.js';
import type { TxnOffsetCommitRequest } from '../generated/TxnOffsetCommitRequest.js';
import type { TxnOffsetCommitResponse } from '../generated/TxnOffsetCommitResponse.js';
import type { CommittedView, TxnError } from '../../../broker/transactions.js';
import type { ApiTable, RequestContext, ServerState } from '../context.js';

/** The first version of each API that carries PRODUCER_FENCED (KIP-588); older ones get INVALID_PRODUCER_EPOCH. */
const FENCED_FROM: Record<number, number> = { 22: 4, 24: 2, 25: 2, 26: 2, 28: 3 };

/** Kafka's states, for ListTransactions' filters. */
const KNOWN_STATES = new Set(['Empty', 'Ongoing', 'PrepareCommit', 'PrepareAbort', 'CompleteCommit', 'CompleteAbort', 'Dead', 'PrepareEpochFence']);

function codeOf(ctx: RequestContext, error: TxnError): number {
  if (error === 'PRODUCER_FENCED' && ctx.version < (FENCED_FROM[ctx.header.apiKey] ?? 0)) return ERR.INVALID_PRODUCER_EPOCH;
  return ERR[error];
}

/** Waits for a coordinator change to be stored: 0, or Kafka's answer for a coordinator that cannot write. */
async function stored(committed: Promise<void>): Promise<number> {
  try {
    await committed;
    return ERR.NONE;
  } catch {
    return ERR.COORDINATOR_NOT_AVAILABLE;
  }
}

/** InitProducerId with a transactional id (produce.ts hands it here). */
export async function initTransactionalProducer(ctx: RequestContext, req: InitProducerIdRequest) {
  const fail = (errorCode: number) => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 });
  if (!req.transactionalId) return fail(ERR.INVALID_REQUEST);
  let r;
  try {
    r = ctx.server.engine().transactions.init(req.transactionalId, req.transactionTimeoutMs, ctx.version >= 3 ? req.producerId : -1n, ctx.version >= 3 ? req.producerEpoch : -1, () => ctx.server.nextProducerId++);
  } catch {
    return fail(ERR.COORDINATOR_NOT_AVAILABLE);
  }
  if ('error' in r) return fail(codeOf(ctx, r.error));
  const code = await stored(r.committed);
  if (code) return fail(code);
  return { throttleTimeMs: 0, errorCode: 0, producerId: r.producerId, producerEpoch: r.epoch };
}

/** Produce: a transactional batch's refusal (Kafka's code and words), or null to append it. */
export function transactionalBatchRefusal(server: ServerState, header: BatchHeader, topic: string, partition: number): { code: number; message: string } | null {
  const error = server.engine().transactions.beforeAppend(header.producerId, header.producerEpoch, topic, partition);
  if (error === null) return null;
  if (error === 'INVALID_PRODUCER_EPOCH') return { code: ERR.INVALID_PRODUCER_EPOCH, message: `Producer ${header.producerId} epoch ${header.producerEpoch} is not the current one: it has been fenced by a newer producer with the same transactional.id, or its transaction timed out` };
  return { code: ERR.INVALID_TXN_STATE, message: `Partition ${topic}-${partition} is not in an ongoing transaction of producer ${header.producerId} with epoch ${header.producerEpoch}` };
}

/** Produce: a transactional batch's records were appended at `base`; `kept`: the batch was stored as produced. */
export function transactionalBatchAppended(server: ServerState, header: BatchHeader, topic: string, partition: number, base: number, count: number, kept: boolean): void {
  server.engine().transactions.appended(header.producerId, topic, partition, base, count, kept);
}

/** Fetch and ListOffsets with read_committed: the partition's last stable offset and aborted transactions. */
export function committedView(server: ServerState, topic: string, partition: number, end: number): CommittedView {
  return server.engine().transactions.committedView(topic, partition, end);
}

/** The partitions of a request that exist, and the answers for those that do not. */
function knownPartitions(ctx: RequestContext, topics: AddPartitionsToTxnTopic[]): { all: Array<{ topic: string; partition: number }>; unknown: Set<string> } {
  const engine = ctx.server.engine();
  const all: Array<{ topic: string; partition: number }> = [];
  const unknown = new Set<string>();
  for (const t of topics) {
    const count = engine.topicInfo(t.name)?.partitions.length ?? 0;
    for (const p of t.partitions) {
      all.push({ topic: t.name, partition: p });
      if (!(p >= 0 && p < count)) unknown.add(`${p}\0${t.name}`);
    }
  }
  return { all, unknown };
}

async function addPartitionsOne(ctx: RequestContext, transactionalId: string, producerId: bigint, producerEpoch: number, topics: AddPartitionsToTxnTopic[], verifyOnly: boolean): Promise<Encodable<AddPartitionsToTxnTopicResult>[]> {
  const answer = (code: (topic: string, partition: number) => number) => topics.map((t) => ({ name: t.name, resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: code(t.name, p) })) }));
  const engine = ctx.server.engine();
  if (verifyOnly) {
    const d = engine.transactions.describe(transactionalId);
    const inTxn = new Set((d?.state === 'Ongoing' && d.producerId === producerId && d.epoch === producerEpoch ? d.partitions : []).map((p) => `${p.partition}\0${p.topic}`));
    return answer((t, p) => (inTxn.has(`${p}\0${t}`) ? ERR.NONE : ERR.INVALID_TXN_STATE));
  }
  const { all, unknown } = knownPartitions(ctx, topics);
  if (unknown.size > 0) return answer((t, p) => (unknown.has(`${p}\0${t}`) ? ERR.UNKNOWN_TOPIC_OR_PARTITION : ERR.OPERATION_NOT_ATTEMPTED));
  let r;
  try {
    r = engine.transactions.addPartitions(transactionalId, producerId, producerEpoch, all);
  } catch {
    return answer(() => ERR.COORDINATOR_NOT_AVAILABLE);
  }
  if ('error' in r) {
    const code = codeOf(ctx, r.error);
    return answer(() => code);
  }
  const code = await stored(r.committed);
  return answer(() => code);
}

async function addPartitionsToTxn(ctx: RequestContext, req: AddPartitionsToTxnRequest): Promise<Encodable<AddPartitionsToTxnResponse>> {
  if (ctx.version <= 3) {
    const results = await addPartitionsOne(ctx, req.v3AndBelowTransactionalId, req.v3AndBelowProducerId, req.v3AndBelowProducerEpoch, req.v3AndBelowTopics, false);
    return { throttleTimeMs: 0, errorCode: 0, resultsByTransaction: [], resultsByTopicV3AndBelow: results };
  }
  const resultsByTransaction = [];
  for (const t of req.transactions) {
    resultsByTransaction.push({ transactionalId: t.transactionalId, topicResults: await addPartitionsOne(ctx, t.transactionalId, t.producerId, t.producerEpoch, t.topics, t.verifyOnly) });
  }
  return { throttleTimeMs: 0, errorCode: 0, resultsByTransaction, resultsByTopicV3AndBelow: [] };
}

async function addOffsetsToTxn(ctx: RequestContext, req: AddOffsetsToTxnRequest) {
  if (!req.groupId) return { throttleTimeMs: 0, errorCode: ERR.INVALID_GROUP_ID };
  let r;
  try {
    r = ctx.server.engine().transactions.addGroup(req.transactionalId, req.producerId, req.producerEpoch, req.groupId);
  } catch {
    return { throttleTimeMs: 0, errorCode: ERR.COORDINATOR_NOT_AVAILABLE };
  }
  if ('error' in r) return { throttleTimeMs: 0, errorCode: codeOf(ctx, r.error) };
  return { throttleTimeMs: 0, errorCode: await stored(r.committed) };
}

function txnOffsetCommit(ctx: RequestContext, req: TxnOffsetCommitRequest): Encodable<TxnOffsetCommitResponse> {
  const answer = (code: (topic: string, partition: number) => number) => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code(t.name, p.partitionIndex) })) })),
  });
  if (!req.groupId) return answer(() => ERR.INVALID_GROUP_ID);
  const engine = ctx.server.engine();
  // From v3 a member's commit carries its generation, which must be the group's current one.
  if (ctx.version >= 3 && req.generationId >= 0) {
    const problem = engine.groupCoordinator.checkMember(req.groupId, req.generationId, req.memberId);
    if (problem) return answer(() => ERR[problem]);
  }
  const bad = new Set<string>();
  const offsets: Array<{ topic: string; partition: number; offset: number }> = [];
  for (const t of req.topics) {
    const count = engine.topicInfo(t.name)?.partitions.length ?? 0;
    for (const p of t.partitions) {
      if (p.partitionIndex >= 0 && p.partitionIndex < count && p.committedOffset >= 0n && p.committedOffset <= BigInt(Number.MAX_SAFE_INTEGER)) {
        offsets.push({ topic: t.name, partition: p.partitionIndex, offset: Number(p.committedOffset) });
      } else bad.add(`${p.partitionIndex}\0${t.name}`);
    }
  }
  let error: TxnError | null;
  try {
    error = engine.transactions.commitOffsets(req.transactionalId, req.producerId, req.producerEpoch, req.groupId, offsets);
  } catch {
    return answer(() => ERR.COORDINATOR_NOT_AVAILABLE);
  }
  if (error) {
    const code = codeOf(ctx, error);
    return answer(() => code);
  }
  return answer((t, p) => (bad.has(`${p}\0${t}`) ? ERR.UNKNOWN_TOPIC_OR_PARTITION : ERR.NONE));
}

async function endTxn(ctx: RequestContext, req: EndTxnRequest) {
  const answer = (errorCode: number) => ({ throttleTimeMs: 0, errorCode, producerId: req.producerId, producerEpoch: req.producerEpoch });
  let r;
  try {
    r = ctx.server.engine().transactions.end(req.transactionalId, req.producerId, req.producerEpoch, req.committed);
  } catch {
    return answer(ERR.COORDINATOR_NOT_AVAILABLE);
  }
  if ('error' in r) return answer(codeOf(ctx, r.error));
  return answer(await stored(r.committed));
}

function describeTransactions(ctx: RequestContext, req: DescribeTransactionsRequest): Encodable<DescribeTransactionsResponse> {
  const txns = ctx.server.engine().transactions;
  return {
    throttleTimeMs: 0,
    transactionStates: req.transactionalIds.map((id) => {
      const d = txns.describe(id);
      if (!d) return { errorCode: ERR.TRANSACTIONAL_ID_NOT_FOUND, transactionalId: id, transactionState: '', transactionTimeoutMs: 0, transactionStartTimeMs: -1n, producerId: -1n, producerEpoch: -1, topics: [] };
      const byTopic = new Map<string, number[]>();
      for (const p of d.partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
      return {
        errorCode: 0,
        transactionalId: id,
        transactionState: d.state,
        transactionTimeoutMs: d.timeoutMs,
        transactionStartTimeMs: BigInt(d.startedAt),
        producerId: d.producerId,
        producerEpoch: d.epoch,
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      };
    }),
  };
}

function listTransactions(ctx: RequestContext, req: ListTransactionsRequest): Encodable<ListTransactionsResponse> {
  const states = new Set(req.stateFilters);
  const producers = new Set(req.producerIdFilters.map(String));
  const now = Date.now();
  const minDuration = ctx.version >= 1 ? Number(req.durationFilter) : -1;
  const transactionStates = ctx.server
    .engine()
    .transactions.list()
    .filter((d) => (states.size === 0 || states.has(d.state)) && (producers.size === 0 || producers.has(String(d.producerId))))
    .filter((d) => minDuration < 0 || (d.state === 'Ongoing' && now - d.startedAt >= minDuration))
    .map((d) => ({ transactionalId: d.transactionalId, producerId: d.producerId, transactionState: d.state }));
  return { throttleTimeMs: 0, errorCode: 0, unknownStateFilters: req.stateFilters.filter((s) => !KNOWN_STATES.has(s)), transactionStates };
}

export const transactionApis: ApiTable = {
  24: { min: 0, max: 5, handle: addPartitionsToTxn },
  25: { min: 0, max: 4, handle: addOffsetsToTxn },
  26: { min: 0, max: 5, handle: endTxn },
  28: { min: 0, max: 4, handle: txnOffsetCommit },
  65: { min: 0, max: 0, handle: describeTransactions },
  66: { min: 0, max: 1, handle: listTransactions },
};
