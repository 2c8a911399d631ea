/**
 * Produce and InitProducerId.
 *
 * A produced batch is checked (magic 2, CRC-32C, its records readable after
 * decompression) and its records appended to the partition in order, the
 * batch itself kept as it came for fetches (stored-batches.ts); the answer
 * carries the offset of its first record. acks=1 and acks=all are
 * answered after the group commit has made the records durable (this broker
 * has one replica, so both mean the same); acks=0 gets no answer.
 *
 * Idempotent producers (a producer id and sequence numbers in the batch): per
 * producer and partition the broker remembers the last batch's sequence and
 * offset; a batch sent again is answered with its first offset and not
 * appended twice, and a gap in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER.
 */
import type { Encodable } from '../codec/primitives.js';
import { BatchError, checkCrc, readRecords, splitBatches } from '../codec/record-batch.js';
import { codeOf, ERR } from '../errors.js';
import type { InitProducerIdRequest } from '../generated/InitProducerIdRequest.js';
import type { ProduceRequest } from '../generated/ProduceRequest.js';
import type { PartitionProduceResponse, ProduceResponse } from '../generated/ProduceResponse.js';
import type { ApiTable, RequestContext } from '../context.js';
import { topicMaxMessageBytes } from './configs.js';
import { initTransactionalProducer, transactionalBatchAppended, transactionalBatchRefusal } from './transactions.js';

/** A compressed batch may expand to at most this (a guard against decompression bombs). */
const MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

type PartitionAnswer = Encodable<PartitionProduceResponse>;

function partitionAnswer(partition: number, errorCode: number, baseOffset = -1, errorMessage: string | null = null): PartitionAnswer {
  return { index: partition, errorCode, baseOffset: BigInt(baseOffset), logAppendTimeMs: -1n, logStartOffset: -1n, errorMessage };
}

/**
 * Appends a partition's batches at once, in order (no await until all are
 * appended, so that a connection's next Produce, which may start while this
 * one waits, appends after it), then waits for their commit.
 */
async function producePartition(ctx: RequestContext, topic: string, partition: number, data: Buffer | null): Promise<PartitionAnswer> {
  const committed: Array<Promise<void>> = [];
  const result = appendPartition(ctx, topic, partition, data, committed);
  if (committed.length > 0) {
    try {
      await Promise.all(committed);
    } catch (error) {
      return partitionAnswer(partition, codeOf(error, ERR.KAFKA_STORAGE_ERROR), -1, (error as Error).message);
    }
  }
  return result;
}

function appendPartition(ctx: RequestContext, topic: string, partition: number, data: Buffer | null, committed: Array<Promise<void>>): PartitionAnswer {
  const answer = (errorCode: number, baseOffset = -1, errorMessage: string | null = null): PartitionAnswer => partitionAnswer(partition, errorCode, baseOffset, errorMessage);
  const engine = ctx.server.engine();
  const t = engine.topicInfo(topic);
  if (!t || partition < 0 || partition >= t.partitions.length) return answer(ERR.UNKNOWN_TOPIC_OR_PARTITION, -1, `This server does not host this topic-partition.`);
  if (data === null || data.length === 0) return answer(ERR.CORRUPT_MESSAGE, -1, 'no record batch');
  let batches;
  try {
    batches = splitBatches(data);
  } catch (error) {
    return answer(ERR[(error as BatchError).code] ?? ERR.CORRUPT_MESSAGE, -1, (error as Error).message);
  }
  let first = -1;
  const maxBytes = topicMaxMessageBytes(ctx.server, t);
  for (const { header, bytes } of batches) {
    if (bytes.length > maxBytes) return answer(ERR.MESSAGE_TOO_LARGE, -1, `The request included a message larger than the max message size the server will accept (${maxBytes} bytes).`);
    try {
      checkCrc(bytes, header);
    } catch (error) {
      return answer(ERR.CORRUPT_MESSAGE, -1, (error as Error).message);
    }
    if (header.control) continue;
    if (header.transactional) {
      const refused = transactionalBatchRefusal(ctx.server, header, topic, partition);
      if (refused) return answer(refused.code, -1, refused.message);
    }
    // Idempotence: a batch seen before answers with its offset; a gap is refused.
    const seqKey = header.producerId >= 0n ? `${header.producerId}:${topic}:${partition}` : null;
    const seen = seqKey ? ctx.server.sequences.get(seqKey) : undefined;
    if (seen && seqKey) {
      if (header.producerEpoch < seen.epoch) return answer(ERR.INVALID_PRODUCER_EPOCH, -1, `producer epoch ${header.producerEpoch} is older than ${seen.epoch}`);
      if (header.producerEpoch === seen.epoch) {
        if (header.baseSequence === seen.lastBaseSequence) {
          if (first < 0) first = seen.lastBaseOffset;
          continue;
        }
        if (header.baseSequence !== (seen.lastSequence + 1) % 2 ** 31) {
          return answer(ERR.OUT_OF_ORDER_SEQUENCE_NUMBER, -1, `expected sequence ${seen.lastSequence + 1}, got ${header.baseSequence}`);
        }
      }
    }
    let records;
    try {
      records = readRecords(bytes, header, MAX_DECOMPRESSED_BYTES);
    } catch (error) {
      return answer(ERR[(error as BatchError).code] ?? ERR.CORRUPT_MESSAGE, -1, (error as Error).message);
    }
    if (records.length === 0) continue;
    const logAppendTime = (header.attributes & 0x08) !== 0;
    // Kept as produced, for fetches, where its records are exactly what the rows hold.
    const keep = !logAppendTime && header.recordCount === records.length && header.lastOffsetDelta === records.length - 1 && records.every((r, i) => r.offsetDelta === i && r.timestamp >= 0);
    // Headers as Kafka has them: a repeated key and a null value are kept, in order.
    let stored;
    try {
      stored = engine.appendBatch(topic, partition, records, keep ? bytes : null, logAppendTime ? Date.now() : null);
    } catch (error) {
      return answer(codeOf(error, ERR.INVALID_RECORD), -1, (error as Error).message);
    }
    committed.push(stored.committed);
    const base = stored.base;
    if (header.transactional) transactionalBatchAppended(ctx.server, header, topic, partition, base, records.length, keep);
    if (first < 0) first = base;
    if (seqKey) ctx.server.sequences.set(seqKey, { epoch: header.producerEpoch, lastBaseSequence: header.baseSequence, lastSequence: header.baseSequence + header.lastOffsetDelta, lastBaseOffset: base });
  }
  // Appending does not move the log start: the description read above still gives it.
  return { ...answer(ERR.NONE, first), logStartOffset: BigInt(t.partitions[partition]!.startOffset) };
}

async function produce(ctx: RequestContext, req: ProduceRequest): Promise<Encodable<ProduceResponse> | null> {
  const acks = req.acks;
  if (acks !== 0 && acks !== 1 && acks !== -1) {
    return { responses: req.topicData.map((t) => ({ name: t.name, partitionResponses: t.partitionData.map((p) => ({ index: p.index, errorCode: ERR.INVALID_REQUIRED_ACKS, baseOffset: -1n })) })), throttleTimeMs: 0 };
  }
  const responses = await Promise.all(
    req.topicData.map(async (t) => ({
      name: t.name,
      partitionResponses: await Promise.all(t.partitionData.map((p) => producePartition(ctx, t.name, p.index, p.records))),
    })),
  );
  if (acks === 0) {
    for (const t of responses) for (const p of t.partitionResponses) if (p.errorCode) ctx.server.logger.warn('kafka acks=0 produce failed', { topic: t.name, partition: p.index, errorCode: p.errorCode, error: p.errorMessage });
    return null;
  }
  return { responses, throttleTimeMs: 0 };
}

function initProducerId(ctx: RequestContext, req: InitProducerIdRequest) {
  if (req.transactionalId !== null) return initTransactionalProducer(ctx, req);
  // A producer that asks again with its id (KIP-360) keeps it with the next epoch.
  if (req.producerId >= 0n && req.producerEpoch >= 0) return { throttleTimeMs: 0, errorCode: 0, producerId: req.producerId, producerEpoch: (req.producerEpoch + 1) % 32767 };
  const id = ctx.server.nextProducerId++;
  return { throttleTimeMs: 0, errorCode: 0, producerId: id, producerEpoch: 0 };
}

export const produceApis: ApiTable = {
  0: { min: 0, max: 11, handle: produce },
  22: { min: 0, max: 5, handle: initProducerId },
};
