/**
 * Every generated request and response, in every version Kafka's schemas
 * define: a random value encodes and decodes back to itself, and encoding the
 * decoded value gives the same bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../../src-main/protocols/kafka/codec/primitives.js';
import { MESSAGE_FILES, messageArbitrary, validVersions } from './schema-arbitrary.js';

const RUNS = Number(process.env.KAFKA_ROUNDTRIP_RUNS ?? 15);

describe('Kafka codecs round trip', () => {
  it.each(MESSAGE_FILES)('%s', async (file) => {
    const name = file.replace(/\.json$/, '');
    const mod = (await import(`../../../../src-main/protocols/kafka/generated/${name}.ts`)) as Record<string, (...a: unknown[]) => unknown>;
    const write = mod[`write${name}`] as (w: Writer, v: number, o: unknown) => void;
    const read = mod[`read${name}`] as (r: Reader, v: number) => Record<string, unknown>;
    const { lo, hi } = validVersions(file);
    for (let v = lo; v <= hi; v++) {
      const { arbitrary } = messageArbitrary(file, v);
      fc.assert(
        fc.property(arbitrary, (value) => {
          const w = new Writer(16);
          write(w, v, value);
          const bytes = Buffer.from(w.result());
          const r = new Reader(bytes);
          const decoded = read(r, v);
          expect(r.remaining).toBe(0);
          expect(decoded).toMatchObject(value);
          const again = new Writer(16);
          write(again, v, decoded);
          expect(Buffer.from(again.result()).equals(bytes)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    }
  });
});
