/**
 * Records as Brokerdeck handles them: offsets and timestamps as numbers, key,
 * value and headers as the exact bytes the broker holds (headers in order,
 * duplicates kept) so a re-drive writes back what it read. Views for the UI
 * are made from these at the last moment.
 */
import type { RecordsBatch } from '@platformatic/kafka';
import type { DeadLetterOrigin, DecodedValue, RecordView } from '../../contract/types.js';
import { encodeBytes } from '../encoding.js';

export type { DeadLetterOrigin, DecodedValue };

export type RawHeader = [name: Buffer, value: Buffer | null];

/**
 * A record's headers as a record batch holds them: `headerCount` entries,
 * each name and value with its varint length, in `headerData` from
 * `headersStart` to `headersEnd`. Records read in place keep their headers
 * so, and a re-drive writes them back without decoding them.
 */
export interface EncodedHeaders {
  readonly headerData: Buffer;
  readonly headersStart: number;
  readonly headersEnd: number;
  readonly headerCount: number;
}

export interface RawRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RawHeader[];
}

/** Batch attributes (Kafka's RecordBatch): bit 3 is the timestamp type, bit 5 marks control batches. */
const LOG_APPEND_TIME = 0x08;
const CONTROL = 0x20;

/**
 * Appends the data records of `batches` at or after `from` to `out` and
 * returns the offset after the last batch seen (control batches and records
 * before `from` included), so a reader always moves forward.
 */
export function collectRecords(partition: number, batches: RecordsBatch[] | undefined, from: number, out: RawRecord[]): number {
  let next = from;
  if (!batches) return next;
  for (const batch of batches) {
    const base = Number(batch.firstOffset);
    const last = base + batch.lastOffsetDelta;
    if (last + 1 > next) next = last + 1;
    if ((batch.attributes & CONTROL) !== 0) continue;
    const logAppend = (batch.attributes & LOG_APPEND_TIME) !== 0;
    const firstTs = Number(batch.firstTimestamp);
    const maxTs = Number(batch.maxTimestamp);
    for (const r of batch.records) {
      const offset = base + r.offsetDelta;
      if (offset < from) continue;
      out.push({
        partition,
        offset,
        timestamp: logAppend ? maxTs : firstTs + Number(r.timestampDelta),
        key: r.key && r.key.length >= 0 ? r.key : null,
        value: r.value ?? null,
        headers: r.headers as RawHeader[],
      });
    }
  }
  return next;
}

export function recordSize(r: RawRecord): number {
  let n = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of r.headers) n += k.length + (v?.length ?? 0);
  return n;
}

/** Spring Kafka writes these as big-endian binary numbers (partition an int, the others longs). */
const SPRING_INT_HEADERS = new Set(['kafka_dlt-original-partition']);
const SPRING_LONG_HEADERS = new Set(['kafka_dlt-original-offset', 'kafka_dlt-original-timestamp']);

function readSpringNumber(name: string, value: Buffer): number | null {
  if (SPRING_INT_HEADERS.has(name) && value.length === 4) return value.readInt32BE(0);
  if (SPRING_LONG_HEADERS.has(name) && value.length === 8) return Number(value.readBigInt64BE(0));
  const text = value.toString('latin1');
  return /^-?\d+$/.test(text) ? Number(text) : null;
}

/** A header's value for display: Spring's binary numbers as decimals, text as is, other bytes as base64. */
export function headerText(name: string, value: Buffer | null): string {
  if (value === null) return '';
  if (SPRING_INT_HEADERS.has(name) || SPRING_LONG_HEADERS.has(name)) {
    const n = readSpringNumber(name, value);
    if (n !== null) return String(n);
  }
  return encodeBytes(value).text;
}

function lastHeader(headers: RawHeader[], name: string): Buffer | null {
  for (let i = headers.length - 1; i >= 0; i--) {
    const [k, v] = headers[i]!;
    if (k.length === name.length && k.toString('latin1') === name) return v;
  }
  return null;
}

function text(headers: RawHeader[], name: string): string | null {
  const v = lastHeader(headers, name);
  return v === null ? null : v.toString('utf8');
}

function num(headers: RawHeader[], name: string): number | null {
  const v = lastHeader(headers, name);
  return v === null ? null : readSpringNumber(name, v);
}

export function deadLetterOrigin(headers: RawHeader[]): DeadLetterOrigin | null {
  if (headers.length === 0) return null;
  const springTopic = text(headers, 'kafka_dlt-original-topic');
  if (springTopic !== null || lastHeader(headers, 'kafka_dlt-exception-fqcn') !== null) {
    return {
      source: 'spring',
      topic: springTopic,
      partition: num(headers, 'kafka_dlt-original-partition'),
      offset: num(headers, 'kafka_dlt-original-offset'),
      timestamp: num(headers, 'kafka_dlt-original-timestamp'),
      consumerGroup: text(headers, 'kafka_dlt-original-consumer-group'),
      exceptionClass: text(headers, 'kafka_dlt-exception-fqcn'),
      exceptionMessage: text(headers, 'kafka_dlt-exception-message'),
      causeClass: text(headers, 'kafka_dlt-exception-cause-fqcn'),
      stacktrace: text(headers, 'kafka_dlt-exception-stacktrace'),
    };
  }
  const connectTopic = text(headers, '__connect.errors.topic');
  if (connectTopic !== null || lastHeader(headers, '__connect.errors.exception.class.name') !== null) {
    return {
      source: 'connect',
      topic: connectTopic,
      partition: num(headers, '__connect.errors.partition'),
      offset: num(headers, '__connect.errors.offset'),
      connector: text(headers, '__connect.errors.connector.name'),
      taskId: text(headers, '__connect.errors.task.id'),
      stage: text(headers, '__connect.errors.stage'),
      exceptionClass: text(headers, '__connect.errors.exception.class.name'),
      exceptionMessage: text(headers, '__connect.errors.exception.message'),
      stacktrace: text(headers, '__connect.errors.exception.stacktrace'),
    };
  }
  return null;
}

/** The contract's RecordView already carries what Kafka adds: where a dead letter came from, a decoded value. */
export type KafkaRecordView = RecordView;

export function toView(r: RawRecord): KafkaRecordView {
  const key = r.key ? encodeBytes(r.key) : null;
  const value = r.value ? encodeBytes(r.value) : null;
  // Through a Map (the last of each name wins): a header named __proto__ stays an ordinary key.
  const byName = new Map<string, string>();
  for (const [k, v] of r.headers) {
    const name = k.toString('utf8');
    byName.set(name, headerText(name, v));
  }
  const headers: Record<string, string> = Object.fromEntries(byName);
  const view: KafkaRecordView = {
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: key?.text ?? null,
    keyEncoding: key?.encoding ?? 'utf8',
    value: value?.text ?? null,
    valueEncoding: value?.encoding ?? 'utf8',
    size: recordSize(r),
    headers,
  };
  const origin = deadLetterOrigin(r.headers);
  if (origin) view.deadLetter = origin;
  return view;
}

/** The filter's view of header values: the last one of each name wins, as in the record view. */
export function headerTable(headers: RawHeader[]): Record<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of headers) {
    const name = k.toString('utf8');
    out.set(name, v === null ? null : SPRING_INT_HEADERS.has(name) || SPRING_LONG_HEADERS.has(name) ? headerText(name, v) : v);
  }
  return Object.fromEntries(out);
}
