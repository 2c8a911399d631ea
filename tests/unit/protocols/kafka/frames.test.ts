/**
 * Framing: frames cut at any byte boundaries come out whole and in order, and
 * a size outside 1 … 100 MiB is refused instead of buffered.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../../../src-main/protocols/kafka/connection.js';
import { ProtocolError } from '../../../../src-main/protocols/kafka/codec/primitives.js';

function frame(body: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeInt32BE(body.length, 0);
  Buffer.from(body).copy(b, 4);
  return b;
}

describe('Kafka frame decoder', () => {
  it('reassembles frames split at arbitrary byte boundaries', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map(frame));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const d = new FrameDecoder();
        const out: Buffer[] = [];
        let from = 0;
        for (const p of [...points, stream.length]) {
          out.push(...d.push(stream.subarray(from, p)));
          from = p;
        }
        expect(out.map((b) => Buffer.from(b).toString('hex'))).toEqual(bodies.map((b) => Buffer.from(b).toString('hex')));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a frame whose size is zero, negative or larger than the limit', () => {
    for (const size of [0, -1, 100 * 1024 * 1024 + 1]) {
      const head = Buffer.alloc(4);
      head.writeInt32BE(size, 0);
      expect(() => new FrameDecoder().push(head)).toThrow(ProtocolError);
    }
  });
});
