/**
 * Values in the Confluent wire format (magic byte 0, a 4-byte schema id, then
 * the payload) decoded through a Confluent-compatible schema registry: Avro,
 * Protobuf (whose payload starts with the message-index path) and JSON
 * Schema. Schemas are fetched once per id through @platformatic/kafka's
 * registry client; a failed lookup is not retried for a while, so a missing
 * registry does not slow every page down.
 */
import { ConfluentSchemaRegistry } from '@platformatic/kafka';
import avro from 'avsc';
import { jsonSafe } from '../encoding.js';
import type { DecodedValue, KafkaRecordView, RawRecord } from './records.js';

const FAILURE_TTL_MS = 30_000;

interface ProtoType {
  decode(data: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): Record<string, unknown>;
  nestedArray?: unknown[];
  fields?: unknown;
}

interface ProtoNamespace {
  nestedArray?: unknown[];
}

function isType(x: unknown): x is ProtoType {
  return typeof x === 'object' && x !== null && typeof (x as ProtoType).decode === 'function' && 'fields' in x;
}

/** Reads a zigzag varint; returns [value, bytes read]. */
function zigzag(buf: Buffer, at: number): [number, number] {
  let result = 0;
  let shift = 0;
  let i = at;
  for (;;) {
    if (i >= buf.length) throw new Error('truncated message index');
    const b = buf[i++]!;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 35) throw new Error('message index too long');
  }
  const value = result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  return [value, i - at];
}

/** Confluent's message indexes: a count, then the path; a single 0 byte means [0]. */
export function readMessageIndexes(payload: Buffer): { path: number[]; rest: Buffer } {
  const [count, n] = zigzag(payload, 0);
  if (count === 0) return { path: [0], rest: payload.subarray(n) };
  let at = n;
  const path: number[] = [];
  for (let i = 0; i < count; i++) {
    const [v, m] = zigzag(payload, at);
    path.push(v);
    at += m;
  }
  return { path, rest: payload.subarray(at) };
}

/** The message types at the top of a .proto file, in declaration order (under its package, if any). */
function topLevelTypes(root: ProtoNamespace): ProtoType[] {
  let ns: ProtoNamespace = root;
  for (let depth = 0; depth < 16; depth++) {
    const nested = ns.nestedArray ?? [];
    const types = nested.filter(isType);
    if (types.length > 0) return types;
    const inner = nested.find((x) => typeof x === 'object' && x !== null && 'nestedArray' in (x as object));
    if (!inner) return [];
    ns = inner as ProtoNamespace;
  }
  return [];
}

export class SchemaDecoder {
  private readonly registry: ConfluentSchemaRegistry;
  private readonly failures = new Map<number, { at: number; message: string }>();
  private readonly inflight = new Map<number, Promise<void>>();
  /** Avro schemas the registry served without a schemaType, which the client library skips. */
  private readonly avroTypes = new Map<number, avro.Type>();
  private readonly url: string;

  constructor(url: string) {
    this.url = url.replace(/\/+$/, '');
    this.registry = new ConfluentSchemaRegistry({ url: this.url });
  }

  /**
   * The Confluent API leaves schemaType out for Avro (its default), and so does
   * Apicurio's; the client library stores only schemas that name their type.
   */
  private async untypedAvro(id: number): Promise<void> {
    const res = await fetch(`${this.url}/schemas/ids/${id}`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`Failed to fetch a schema: [HTTP ${res.status}]`);
    const body = (await res.json()) as { schema?: unknown; schemaType?: unknown };
    if ((body.schemaType === undefined || body.schemaType === 'AVRO') && typeof body.schema === 'string') {
      this.avroTypes.set(id, avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema));
    }
  }

  private async schema(id: number): Promise<void> {
    if (this.registry.get(id) || this.avroTypes.has(id)) return;
    const failed = this.failures.get(id);
    if (failed && Date.now() - failed.at < FAILURE_TTL_MS) throw new Error(failed.message);
    let p = this.inflight.get(id);
    if (!p) {
      p = new Promise<void>((resolve, reject) => {
        void this.registry.fetchSchema(id, (error) => (error ? reject(error) : resolve()));
      })
        .then(() => (this.registry.get(id) ? undefined : this.untypedAvro(id)))
        .finally(() => this.inflight.delete(id));
      this.inflight.set(id, p);
    }
    try {
      await p;
    } catch (error) {
      const message = `schema ${id}: ${(error as Error).message}`;
      this.failures.set(id, { at: Date.now(), message });
      throw new Error(message);
    }
  }

  async decode(value: Buffer): Promise<DecodedValue | null> {
    if (value.length < 5 || value[0] !== 0) return null;
    const schemaId = value.readInt32BE(1);
    await this.schema(schemaId);
    const payload = value.subarray(5);
    const untyped = this.avroTypes.get(schemaId);
    if (untyped) return { format: 'avro', schemaId, value: jsonSafe(untyped.fromBuffer(payload)) };
    const schema = this.registry.get(schemaId);
    if (!schema) throw new Error(`schema ${schemaId}: the registry gave a schema type Brokerdeck cannot read`);
    switch (schema.type) {
      case 'avro': {
        const type = schema.schema as { fromBuffer(b: Buffer): unknown };
        return { format: 'avro', schemaId, value: jsonSafe(type.fromBuffer(payload)) };
      }
      case 'protobuf': {
        const { path, rest } = readMessageIndexes(payload);
        let types = topLevelTypes(schema.schema as ProtoNamespace);
        let type: ProtoType | undefined;
        for (const i of path) {
          type = types[i];
          if (!type) throw new Error(`schema ${schemaId}: no message type at index path [${path.join(', ')}]`);
          types = (type.nestedArray ?? []).filter(isType);
        }
        const message = type!.decode(rest);
        return { format: 'protobuf', schemaId, value: jsonSafe(type!.toObject(message, { longs: String, enums: String, bytes: String, defaults: false })) };
      }
      case 'json':
        return { format: 'json', schemaId, value: JSON.parse(payload.toString('utf8')) as unknown };
    }
    return null;
  }

  /** Adds `decoded` (or `decodeError`) to the views whose value is in the wire format. */
  async decorate(views: KafkaRecordView[], raws: RawRecord[]): Promise<void> {
    await Promise.all(
      raws.map(async (r, i) => {
        if (!r.value || r.value.length < 5 || r.value[0] !== 0) return;
        try {
          const decoded = await this.decode(r.value);
          if (decoded) views[i]!.decoded = decoded;
        } catch (error) {
          views[i]!.decodeError = (error as Error).message;
        }
      }),
    );
  }
}
