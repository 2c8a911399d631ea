/**
 * fast-check arbitraries built from Kafka's JSON message schemas, for one
 * message version: every field the version carries gets a random value (null
 * only where that version allows it), every other field its default, so an
 * encode → decode round trip must give the value back unchanged. The schemas
 * are the copy the generator keeps beside the codecs (generated/message-schemas.ts),
 * so these tests run without Kafka's schema files; SPEC_DIR is where the
 * generator reads them, for the test that the generated files are current.
 */
import path from 'node:path';
import fc from 'fast-check';
// @ts-expect-error the generator is a plain ES module without types
import { collectStructs, range } from '../../../../scripts/codegen-kafka.mjs';
import { MESSAGE_SCHEMAS } from '../../../../src-main/protocols/kafka/generated/message-schemas.js';

export const SPEC_DIR = process.env.KAFKA_SPEC_DIR ?? path.resolve(__dirname, '../../../../../shared/protocol-specs/kafka/message');

interface Range {
  lo: number;
  hi: number;
}
interface Field {
  prop: string;
  isArray: boolean;
  inner: string;
  primitive: boolean;
  versions: Range | null;
  nullable: Range | null;
  default?: string;
}
interface Struct {
  name: string;
  fields: Field[];
}

/** The schema files' names (requests, responses and headers), sorted. */
export const MESSAGE_FILES = Object.keys(MESSAGE_SCHEMAS).sort();

function schema(file: string): { name: string; validVersions: string } {
  const msg = MESSAGE_SCHEMAS[file] as { name: string; validVersions: string } | undefined;
  if (!msg) throw new Error(`no Kafka schema ${file} in generated/message-schemas.ts`);
  return msg;
}

const has = (r: Range | null, v: number) => r !== null && v >= r.lo && v <= r.hi;

function scalar(t: string): fc.Arbitrary<unknown> {
  switch (t) {
    case 'bool':
      return fc.boolean();
    case 'int8':
      return fc.integer({ min: -128, max: 127 });
    case 'int16':
      return fc.integer({ min: -32768, max: 32767 });
    case 'uint16':
      return fc.integer({ min: 0, max: 65535 });
    case 'int32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'uint32':
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'int64':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'float64':
      return fc.double({ noNaN: true });
    case 'string':
      return fc.string({ maxLength: 12, unit: 'grapheme' });
    case 'uuid':
      return fc.uuid();
    default:
      return fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
  }
}

export function messageArbitrary(file: string, version: number): { name: string; arbitrary: fc.Arbitrary<Record<string, unknown>>; defaults: (o: Record<string, unknown>) => Record<string, unknown> } {
  const msg = schema(file);
  const structs = collectStructs(msg) as Map<string, Struct>;
  const cache = new Map<string, fc.Arbitrary<Record<string, unknown>>>();
  const structArb = (name: string, depth: number): fc.Arbitrary<Record<string, unknown>> => {
    const key = `${name}:${depth}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const s = structs.get(name)!;
    const shape: Record<string, fc.Arbitrary<unknown>> = {};
    for (const f of s.fields) {
      if (!has(f.versions, version)) continue;
      let a: fc.Arbitrary<unknown> = f.primitive ? scalar(f.inner) : structArb(f.inner, depth + 1);
      if (f.isArray) a = fc.array(a, { maxLength: depth > 2 ? 0 : 3 });
      if (has(f.nullable, version)) a = fc.option(a, { nil: null });
      shape[f.prop] = a;
    }
    const arb = fc.record(shape);
    cache.set(key, arb);
    return arb;
  };
  return { name: msg.name, arbitrary: structArb(msg.name, 0), defaults: (o) => o };
}

export function validVersions(file: string): Range {
  return range(schema(file).validVersions) as Range;
}
