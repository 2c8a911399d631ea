/**
 * Values in the Confluent wire format decoded through a real schema registry
 * (Apicurio Registry's Confluent-compatible API): an Avro and a Protobuf schema
 * registered over HTTP, records framed with magic byte 0 and the schema id
 * produced to a real topic, browsed decoded; then, with the registry gone, the
 * raw value still shown with the reason it could not be decoded.
 */
import avro from 'avsc';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import type { KafkaRecordView } from '../../../src-main/connectors/kafka/records.js';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { useSchemaRegistry } from '../../schema-registry/registry.js';
import { connect, createTopic, eventually, topicName } from './helpers.js';

const AVRO_SCHEMA = { type: 'record', name: 'Order', namespace: 'shop', fields: [{ name: 'id', type: 'long' }, { name: 'item', type: 'string' }] };
const PROTO_SCHEMA = 'syntax = "proto3";\npackage shop;\nmessage Ping { string from = 1; }\nmessage Payment { string order = 1; int32 cents = 2; }\n';

async function register(url: string, subject: string, body: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${url}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { id?: number };
  if (!res.ok || typeof json.id !== 'number') throw new Error(`registering ${subject}: ${res.status} ${JSON.stringify(json)}`);
  return json.id;
}

/** Magic byte 0, the schema id (big-endian), then the payload. */
function framed(id: number, payload: Buffer): string {
  const head = Buffer.alloc(5);
  head.writeInt32BE(id, 1);
  return Buffer.concat([head, payload]).toString('base64');
}

export function schemaRegistrySuite(kafka: KafkaBrokerHandle): void {
  describe('schema registry', () => {
    const registry = useSchemaRegistry();

    it('browses Avro and Protobuf values decoded through the registry, and the raw value when it is down', async (ctx) => {
      const broker = kafka.require(ctx);
      const url = registry.require(ctx);
      const name = topicName('schemas');
      await createTopic(broker, name, 1);

      const avroId = await register(url, `${name}-avro`, { schema: JSON.stringify(AVRO_SCHEMA) });
      const protoId = await register(url, `${name}-proto`, { schemaType: 'PROTOBUF', schema: PROTO_SCHEMA });
      expect(protoId).not.toBe(avroId);

      const order = avro.Type.forSchema(AVRO_SCHEMA as avro.Schema).toBuffer({ id: 42, item: 'kettle' });
      const Payment = protobuf.parse(PROTO_SCHEMA).root.lookupType('shop.Payment');
      // Payment is the second message of the file: message indexes [1] (count 1, then 1, zigzag-encoded).
      const payment = Buffer.concat([Buffer.from([2, 2]), Buffer.from(Payment.encode(Payment.create({ order: 'o-42', cents: 1999 })).finish())]);

      const c = connect(broker, { schemaRegistryUrl: url });
      try {
        await c.produce({ topic: name, value: framed(avroId, order), valueEncoding: 'base64', headers: {}, count: 1, partition: 0 });
        await c.produce({ topic: name, value: framed(protoId, payment), valueEncoding: 'base64', headers: {}, count: 1, partition: 0 });

        const records = await eventually(async () => {
          const page = await c.browseTopic({ topic: name, partition: 0, limit: 10 });
          return page.messages.length === 2 ? (page.messages as KafkaRecordView[]) : null;
        });
        expect(records[0]!.decodeError).toBeUndefined();
        expect(records[0]!.decoded).toEqual({ format: 'avro', schemaId: avroId, value: { id: 42, item: 'kettle' } });
        expect(records[1]!.decodeError).toBeUndefined();
        expect(records[1]!.decoded).toEqual({ format: 'protobuf', schemaId: protoId, value: { order: 'o-42', cents: 1999 } });
      } finally {
        await c.close();
      }

      // A fresh connection (no schema cached) while the registry is down: the raw value with the reason.
      await registry.stop();
      const down = connect(broker, { schemaRegistryUrl: url });
      try {
        const page = await down.browseTopic({ topic: name, partition: 0, limit: 10 });
        const records = page.messages as KafkaRecordView[];
        expect(records).toHaveLength(2);
        for (const r of records) {
          expect(r.decoded).toBeUndefined();
          expect(r.decodeError).toMatch(/^schema \d+: /);
          expect(r.value).toBeTruthy();
        }
        expect(records[0]!.decodeError).toContain(`schema ${avroId}`);
      } finally {
        await down.close();
      }
    });
  });
}
