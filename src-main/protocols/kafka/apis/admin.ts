/**
 * Topic administration beyond create and delete: CreatePartitions (a topic
 * grows, never shrinks) and DeleteRecords (a partition's log start offset
 * moves forward). Each topic or partition gets its own answer, with Kafka's
 * codes and messages, as kafka-topics --alter and kafka-delete-records show them.
 */
import type { Encodable } from '../codec/primitives.js';
import { codeOf, ERR } from '../errors.js';
import type { CreatePartitionsRequest } from '../generated/CreatePartitionsRequest.js';
import type { CreatePartitionsResponse, CreatePartitionsTopicResult } from '../generated/CreatePartitionsResponse.js';
import type { DeleteRecordsRequest } from '../generated/DeleteRecordsRequest.js';
import type { DeleteRecordsPartitionResult, DeleteRecordsResponse } from '../generated/DeleteRecordsResponse.js';
import { NODE_ID, type ApiTable, type RequestContext } from '../context.js';

/** The engine's most partitions per topic. */
const MAX_PARTITIONS = 10_000;

function createPartitions(ctx: RequestContext, req: CreatePartitionsRequest): Encodable<CreatePartitionsResponse> {
  const engine = ctx.server.engine();
  const counts = new Map<string, number>();
  for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  const results = req.topics.map((rt): Encodable<CreatePartitionsTopicResult> => {
    const fail = (errorCode: number, errorMessage: string) => ({ name: rt.name, errorCode, errorMessage });
    if (counts.get(rt.name)! > 1) return fail(ERR.INVALID_REQUEST, 'Duplicate topic in request.');
    const t = engine.topicInfo(rt.name);
    if (!t) return fail(ERR.UNKNOWN_TOPIC_OR_PARTITION, `The topic '${rt.name}' does not exist.`);
    const have = t.partitions.length;
    if (rt.count < have) return fail(ERR.INVALID_PARTITIONS, `The topic ${rt.name} currently has ${have} partition(s); ${rt.count} would not be an increase.`);
    if (rt.count === have) return fail(ERR.INVALID_PARTITIONS, `Topic already has ${have} partition(s).`);
    if (rt.count > MAX_PARTITIONS) return fail(ERR.INVALID_PARTITIONS, `The topic ${rt.name} may have at most ${MAX_PARTITIONS} partitions on this broker; ${rt.count} asked.`);
    if (rt.assignments !== null) {
      const added = rt.count - have;
      if (rt.assignments.length !== added) return fail(ERR.INVALID_REPLICA_ASSIGNMENT, `Attempted to add ${added} additional partition(s), but only ${rt.assignments.length} assignment(s) were specified.`);
      for (const a of rt.assignments) {
        const unknown = a.brokerIds.find((b) => b !== NODE_ID);
        if (unknown !== undefined) return fail(ERR.INVALID_REPLICA_ASSIGNMENT, `The manual partition assignment includes broker ${unknown}, but no such broker is registered.`);
        if (a.brokerIds.length !== 1) return fail(ERR.INVALID_REPLICA_ASSIGNMENT, `The manual partition assignment includes a partition with ${a.brokerIds.length} replica(s), but this is not consistent with previous partitions, which have 1 replica(s).`);
      }
    }
    if (req.validateOnly) return { name: rt.name, errorCode: 0, errorMessage: null };
    try {
      engine.addPartitions(rt.name, rt.count);
      ctx.server.logger.info('kafka topic partitions added', { topic: rt.name, from: have, to: rt.count });
      return { name: rt.name, errorCode: 0, errorMessage: null };
    } catch (error) {
      return fail(codeOf(error, ERR.INVALID_PARTITIONS), (error as Error).message);
    }
  });
  return { throttleTimeMs: 0, results };
}

async function deleteRecords(ctx: RequestContext, req: DeleteRecordsRequest): Promise<Encodable<DeleteRecordsResponse>> {
  const engine = ctx.server.engine();
  const topics = new Map(engine.listTopics().map((t) => [t.name, t]));
  const answers = req.topics.map((rt) => ({
    name: rt.name,
    partitions: rt.partitions.map(async (rp): Promise<Encodable<DeleteRecordsPartitionResult>> => {
      const fail = (errorCode: number) => ({ partitionIndex: rp.partitionIndex, lowWatermark: -1n, errorCode });
      const p = topics.get(rt.name)?.partitions[rp.partitionIndex];
      if (!p) return fail(ERR.UNKNOWN_TOPIC_OR_PARTITION);
      // -1 is the high watermark: everything there is now.
      const before = rp.offset === -1n ? BigInt(p.endOffset) : rp.offset;
      if (before < 0n || before > BigInt(p.endOffset)) return fail(ERR.OFFSET_OUT_OF_RANGE);
      try {
        const start = await engine.deleteRecordsBefore(rt.name, rp.partitionIndex, Number(before));
        return { partitionIndex: rp.partitionIndex, lowWatermark: BigInt(start), errorCode: 0 };
      } catch (error) {
        return fail(codeOf(error, ERR.OFFSET_OUT_OF_RANGE));
      }
    }),
  }));
  const out = [];
  for (const t of answers) out.push({ name: t.name, partitions: await Promise.all(t.partitions) });
  const moved = out.flatMap((t) => t.partitions.filter((p) => p.errorCode === 0).map((p) => `${t.name}-${p.partitionIndex}@${p.lowWatermark}`));
  if (moved.length > 0) ctx.server.logger.info('kafka records deleted', { partitions: moved });
  return { throttleTimeMs: 0, topics: out };
}

export const adminApis: ApiTable = {
  37: { min: 0, max: 3, handle: createPartitions },
  21: { min: 0, max: 2, handle: deleteRecords },
};
