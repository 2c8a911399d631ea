/**
 * SASL on the Kafka listener once it has users (kafka-users.json): kafkajs
 * and kcat (librdkafka) authenticate with SCRAM-SHA-256, SCRAM-SHA-512 and
 * PLAIN and then produce and consume; a wrong password is
 * SASL_AUTHENTICATION_FAILED and the connection is closed; a client that
 * does not authenticate is closed at its first request; the password is in
 * no log. Without users the listener stays plaintext.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import fc from 'fast-check';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../src-main/protocols/kafka/codec/primitives.js';
import { ERR } from '../../../src-main/protocols/kafka/errors.js';
import { API_SCHEMAS } from '../../../src-main/protocols/kafka/generated/index.js';
import { saltedPassword } from '../../../src-main/protocols/kafka/users.js';
import { startWireBroker, type WireBroker } from './helpers.js';

const PASSWORD = 'n0t-in-any-log';
let broker: WireBroker;
beforeAll(async () => {
  broker = await startWireBroker({}, { alice: PASSWORD });
});
afterAll(() => broker?.stop());

const client = (sasl?: SASLOptions) => new Kafka({ clientId: 'sasl-test', brokers: [broker.bootstrap], sasl, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 5000 });

/** Sends one request on a socket and reads one answer, or null when the broker closes the connection instead. */
function exchange(socket: net.Socket, apiKey: number, version: number, body: Record<string, unknown>): Promise<Record<string, any> | null> {
  const schema = API_SCHEMAS.get(apiKey)!;
  const w = new Writer(64);
  w.int32(0).int16(apiKey).int16(version).int32(7).string('raw', false);
  const flexible = schema.firstFlexibleVersion >= 0 && version >= schema.firstFlexibleVersion;
  if (flexible) w.uvarint(0);
  schema.writeRequest(w, version, body);
  const out = Buffer.from(w.result());
  out.writeInt32BE(out.length - 4, 0);
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) {
        socket.off('data', onData);
        const r = new Reader(got.subarray(4, 4 + got.readInt32BE(0)));
        r.int32();
        if (flexible && apiKey !== 18) r.taggedFields(() => false);
        resolve(schema.readResponse(r, version));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(null));
    socket.write(out);
  });
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(broker.port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

describe('SASL on the Kafka listener', () => {
  it.each(['scram-sha-256', 'scram-sha-512', 'plain'] as const)('kafkajs authenticates with %s, then produces and consumes', async (mechanism) => {
    const kafka = client({ mechanism, username: 'alice', password: PASSWORD } as SASLOptions);
    const topic = `sasl-${mechanism}`;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k', value: `over ${mechanism}` }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: `sasl-${mechanism}-group`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) });
    await expect.poll(() => got).toEqual([`over ${mechanism}`]);
    await consumer.disconnect();
    expect(broker.logs.some((l) => l.message === 'kafka client authenticated' && l.fields?.user === 'alice' && l.fields?.mechanism === mechanism.toUpperCase())).toBe(true);
  });

  it('answers a wrong password with SASL_AUTHENTICATION_FAILED and closes the connection', async () => {
    const producer = client({ mechanism: 'scram-sha-256', username: 'alice', password: 'wrong' }).producer();
    await expect(producer.connect()).rejects.toThrow(/SASL SCRAM SHA256 authentication failed|SASL_AUTHENTICATION_FAILED|Authentication failed/);

    // The same on the wire: the error, its message, then the connection closed.
    const socket = await connect();
    const hs = await exchange(socket, 17, 1, { mechanism: 'PLAIN' });
    expect(hs).toMatchObject({ errorCode: 0, mechanisms: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const auth = await exchange(socket, 36, 2, { authBytes: Buffer.from('\0alice\0wrong') });
    expect(auth).toMatchObject({ errorCode: ERR.SASL_AUTHENTICATION_FAILED, errorMessage: 'Authentication failed: Invalid username or password' });
    await closed;
    expect(broker.logs.some((l) => l.message === 'kafka SASL authentication failed')).toBe(true);
    expect(JSON.stringify(broker.logs)).not.toContain(PASSWORD);
  });

  it('closes a client that sends a request before authenticating, and refuses a mechanism it does not offer', async () => {
    const plain = await connect();
    const versions = await exchange(plain, 18, 3, { clientSoftwareName: 'raw', clientSoftwareVersion: '1' });
    expect(versions!.apiKeys.map((a: { apiKey: number }) => a.apiKey)).toEqual(expect.arrayContaining([17, 36]));
    expect(await exchange(plain, 3, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false })).toBeNull();

    // In the middle of an exchange: ILLEGAL_SASL_STATE, then closed.
    const midway = await connect();
    expect(await exchange(midway, 17, 1, { mechanism: 'SCRAM-SHA-256' })).toMatchObject({ errorCode: 0 });
    const shut = new Promise<void>((resolve) => midway.once('close', () => resolve()));
    expect(await exchange(midway, 16, 4, { statesFilter: [] })).toMatchObject({ errorCode: ERR.ILLEGAL_SASL_STATE, groups: [] });
    await shut;

    const gssapi = await connect();
    expect(await exchange(gssapi, 17, 1, { mechanism: 'GSSAPI' })).toEqual({ errorCode: ERR.UNSUPPORTED_SASL_MECHANISM, mechanisms: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] });
    await expect.poll(() => gssapi.destroyed || gssapi.readableEnded).toBe(true);

    // kafkajs without SASL: its ApiVersions is answered, its Metadata closes the connection.
    const admin = client().admin();
    await admin.connect();
    await expect(admin.listTopics()).rejects.toThrow();
    await admin.disconnect();
    expect(broker.logs.some((l) => String(l.fields?.error).startsWith('unexpected Metadata request during SASL authentication'))).toBe(true);
  });

  it('after SaslHandshake v0, takes bare tokens: a right password opens the connection, a wrong one closes it unanswered', async () => {
    const raw = (socket: net.Socket, token: Buffer) =>
      new Promise<Buffer | null>((resolve) => {
        const frame = Buffer.alloc(4 + token.length);
        frame.writeInt32BE(token.length, 0);
        token.copy(frame, 4);
        let got = Buffer.alloc(0);
        const onData = (c: Buffer) => {
          got = Buffer.concat([got, c]);
          if (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) {
            socket.off('data', onData);
            resolve(got.subarray(4, 4 + got.readInt32BE(0)));
          }
        };
        socket.on('data', onData);
        socket.once('close', () => resolve(null));
        socket.write(frame);
      });
    const good = await connect();
    expect(await exchange(good, 17, 0, { mechanism: 'PLAIN' })).toMatchObject({ errorCode: 0 });
    expect(await raw(good, Buffer.from(`\0alice\0${PASSWORD}`))).toEqual(Buffer.alloc(0));
    const meta = await exchange(good, 3, 1, { topics: null });
    expect(meta!.brokers).toHaveLength(1);
    good.destroy();

    const bad = await connect();
    expect(await exchange(bad, 17, 0, { mechanism: 'PLAIN' })).toMatchObject({ errorCode: 0 });
    expect(await raw(bad, Buffer.from('\0alice\0wrong'))).toBeNull();
  });

  it('survives random tokens, bare or in SaslAuthenticate, for every mechanism, with no failure inside the broker', async () => {
    const before = broker.logs.filter((l) => l.level === 'error').length;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'), fc.boolean(), fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 3 }), async (mechanism, bare, tokens) => {
        const socket = await connect();
        try {
          const hs = await exchange(socket, 17, bare ? 0 : 1, { mechanism });
          if (!hs) return;
          for (const t of tokens) {
            if (bare) {
              const frame = Buffer.alloc(4 + t.length);
              frame.writeInt32BE(t.length, 0);
              Buffer.from(t).copy(frame, 4);
              socket.write(frame);
            } else if ((await exchange(socket, 36, 2, { authBytes: Buffer.from(t) })) === null) return;
          }
        } finally {
          socket.destroy();
        }
      }),
      { numRuns: 150 },
    );
    expect(broker.logs.filter((l) => l.level === 'error').length).toBe(before);
    const admin = client({ mechanism: 'scram-sha-256', username: 'alice', password: PASSWORD }).admin();
    await admin.connect();
    await admin.listTopics();
    await admin.disconnect();
  });

  it.skipIf(!existsSync('/usr/bin/kcat'))('kcat authenticates with SCRAM-SHA-256 and SCRAM-SHA-512; a wrong password fails', async () => {
    const kcat = (args: string[], input?: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = execFile('/usr/bin/kcat', ['-b', broker.bootstrap, '-X', 'security.protocol=SASL_PLAINTEXT', ...args], { timeout: 30_000 }, (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }));
        child.stdin!.end(input ?? '');
      });
    for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512']) {
      const auth = ['-X', `sasl.mechanisms=${mechanism}`, '-X', 'sasl.username=alice', '-X', `sasl.password=${PASSWORD}`];
      const topic = `kcat-${mechanism.toLowerCase()}`;
      const produced = await kcat([...auth, '-P', '-t', topic], 'one\ntwo\n');
      expect(produced.code, produced.stderr).toBe(0);
      const consumed = await kcat([...auth, '-C', '-t', topic, '-o', 'beginning', '-e', '-f', '%s\\n']);
      expect(consumed.stdout.trim().split('\n')).toEqual(['one', 'two']);
    }
    const refused = await kcat(['-X', 'sasl.mechanisms=SCRAM-SHA-256', '-X', 'sasl.username=alice', '-X', 'sasl.password=wrong', '-L', '-m', '5']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Authentication failed|SASL authentication error/i);
  });
});

describe('the Kafka listener without users', () => {
  let open: WireBroker;
  beforeAll(async () => {
    open = await startWireBroker();
  });
  afterAll(() => open?.stop());

  it('asks for no authentication and answers SASL requests with ILLEGAL_SASL_STATE, as a PLAINTEXT listener', async () => {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(open.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });
    expect(await exchange(socket, 17, 1, { mechanism: 'PLAIN' })).toMatchObject({ errorCode: ERR.ILLEGAL_SASL_STATE });
    const meta = await exchange(socket, 3, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    expect(meta!.brokers).toHaveLength(1);
    socket.destroy();
  });

  it('AlterUserScramCredentials answers per user as Kafka does; the first user turns authentication on for new connections', async () => {
    const connectOpen = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(open.port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      });
    const socket = await connectOpen();
    const salt = Buffer.from('a salt of sixteen');
    const upsert = (name: string, mechanism: number, iterations = 4096) => ({ name, mechanism, iterations, salt, saltedPassword: saltedPassword(mechanism === 2 ? 'SCRAM-SHA-512' : 'SCRAM-SHA-256', 'ops-pw', salt, iterations) });
    const refused = await exchange(socket, 51, 0, {
      deletions: [{ name: 'ghost', mechanism: 1 }, { name: 'twice', mechanism: 1 }],
      upsertions: [upsert('few', 1, 1000), upsert('many', 1, 20000), upsert('odd', 3), upsert('twice', 1)],
    });
    expect(refused!.results).toEqual([
      { user: 'ghost', errorCode: ERR.RESOURCE_NOT_FOUND, errorMessage: 'Attempt to delete a user credential that does not exist' },
      { user: 'twice', errorCode: ERR.DUPLICATE_RESOURCE, errorMessage: 'A user credential cannot be altered twice in the same request' },
      { user: 'few', errorCode: ERR.UNACCEPTABLE_CREDENTIAL, errorMessage: 'Too few iterations' },
      { user: 'many', errorCode: ERR.UNACCEPTABLE_CREDENTIAL, errorMessage: 'Too many iterations' },
      { user: 'odd', errorCode: ERR.UNSUPPORTED_SASL_MECHANISM, errorMessage: 'Unknown SCRAM mechanism' },
    ]);
    expect((await exchange(socket, 50, 0, { users: null }))!.results).toEqual([]);

    const made = await exchange(socket, 51, 0, { deletions: [], upsertions: [upsert('ops', 1), upsert('ops', 2, 8192)] });
    expect(made!.results).toEqual([{ user: 'ops', errorCode: 0, errorMessage: null }]);
    const described = await exchange(socket, 50, 0, { users: [{ name: 'ops' }, { name: 'nobody' }] });
    expect(described!.results).toEqual([
      { user: 'ops', errorCode: 0, errorMessage: null, credentialInfos: [{ mechanism: 1, iterations: 4096 }, { mechanism: 2, iterations: 8192 }] },
      { user: 'nobody', errorCode: ERR.RESOURCE_NOT_FOUND, errorMessage: 'Attempt to describe a user credential that does not exist: nobody', credentialInfos: [] },
    ]);
    socket.destroy();

    // A new connection must now authenticate: the salted password sent above is the one kafkajs derives.
    const later = await connectOpen();
    expect(await exchange(later, 3, 12, { topics: null, allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false })).toBeNull();
    const kafka = new Kafka({ clientId: 'sasl-made', brokers: [open.bootstrap], sasl: { mechanism: 'scram-sha-512', username: 'ops', password: 'ops-pw' }, logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    const admin = kafka.admin();
    await admin.connect();
    expect(await admin.listTopics()).toEqual([]);
    await admin.disconnect();
  });
});
