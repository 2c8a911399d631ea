/**
 * The Kafka listener's SASL server against published vectors: RFC 7677's
 * SCRAM-SHA-256 exchange (user "user", password "pencil") gives the RFC's
 * server-first and server-final messages, a wrong proof fails, and PLAIN
 * checks passwords against the stored SCRAM credentials. The users file
 * holds salted keys only, mode 0600.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SaslFailure, startExchange } from '../../../../src-main/protocols/kafka/sasl.js';
import { credentialFrom, KAFKA_USERS_FILE, KafkaUserStore, saltedPassword } from '../../../../src-main/protocols/kafka/users.js';

const dir = mkdtempSync(join(tmpdir(), 'bd-kafka-sasl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Kafka SASL server', () => {
  it('runs RFC 7677 SCRAM-SHA-256 exchange to the RFC server signature', () => {
    const users = new KafkaUserStore(null);
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    users.putCredential('user', 'SCRAM-SHA-256', credentialFrom('SCRAM-SHA-256', saltedPassword('SCRAM-SHA-256', 'pencil', salt, 4096), salt, 4096));
    const exchange = startExchange('SCRAM-SHA-256', users, () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
    const first = exchange.step(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    expect(first.reply.toString()).toBe('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    expect(first.done).toBe(false);
    const final = exchange.step(Buffer.from('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='));
    expect(final).toEqual({ reply: Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='), done: true, principal: 'user' });
  });

  it('refuses a wrong proof, another nonce, an unknown user, and an authorization id not the user', () => {
    const users = new KafkaUserStore(null);
    users.putUser('alice', 'wonderland');
    const wrong = startExchange('SCRAM-SHA-512', users, () => 'server');
    const first = wrong.step(Buffer.from('n,,n=alice,r=client')).reply.toString();
    expect(first).toMatch(/^r=clientserver,s=[A-Za-z0-9+/=]+,i=4096$/);
    expect(() => wrong.step(Buffer.from(`c=biws,r=clientserver,p=${Buffer.alloc(64).toString('base64')}`))).toThrow(SaslFailure);
    const nonce = startExchange('SCRAM-SHA-512', users, () => 'server');
    nonce.step(Buffer.from('n,,n=alice,r=client'));
    expect(() => nonce.step(Buffer.from(`c=biws,r=clientOTHER,p=${Buffer.alloc(64).toString('base64')}`))).toThrow('Invalid client nonce in the final client message.');
    expect(() => startExchange('SCRAM-SHA-256', users).step(Buffer.from('n,,n=bob,r=client'))).toThrow('Authentication failed: Invalid user credentials');
    expect(() => startExchange('SCRAM-SHA-256', users).step(Buffer.from('n,a=bob,n=alice,r=client'))).toThrow(/authorization id/);
    expect(() => startExchange('SCRAM-SHA-256', users).step(Buffer.from('garbage'))).toThrow(SaslFailure);
  });

  it('checks PLAIN against the stored SCRAM credentials', () => {
    const users = new KafkaUserStore(null);
    users.putUser('alice', 'wonderland');
    expect(startExchange('PLAIN', users).step(Buffer.from('\0alice\0wonderland'))).toEqual({ reply: Buffer.alloc(0), done: true, principal: 'alice' });
    expect(() => startExchange('PLAIN', users).step(Buffer.from('\0alice\0rabbit'))).toThrow('Authentication failed: Invalid username or password');
    expect(() => startExchange('PLAIN', users).step(Buffer.from('\0nobody\0rabbit'))).toThrow('Authentication failed: Invalid username or password');
    expect(() => startExchange('PLAIN', users).step(Buffer.from('bob\0alice\0wonderland'))).toThrow(/authorization id/);
  });

  it('keeps salted credentials only, in kafka-users.json with mode 0600, read back by a new store', () => {
    const store = new KafkaUserStore(dir);
    expect(store.required).toBe(false);
    store.putUser('svc', 'correct horse battery staple');
    const file = join(dir, KAFKA_USERS_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('correct horse');
    const saved = JSON.parse(text) as { users: Array<{ name: string; credentials: Record<string, { salt: string; storedKey: string; serverKey: string; iterations: number }> }> };
    expect(saved.users.map((u) => u.name)).toEqual(['svc']);
    expect(Object.keys(saved.users[0]!.credentials).sort()).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-512']);
    expect(Buffer.from(saved.users[0]!.credentials['SCRAM-SHA-512']!.storedKey, 'base64')).toHaveLength(64);
    const again = new KafkaUserStore(dir);
    expect(again.required).toBe(true);
    expect(startExchange('PLAIN', again).step(Buffer.from('\0svc\0correct horse battery staple')).done).toBe(true);
  });

  it('answers any client token with a reply or a SaslFailure, never another error', () => {
    const users = new KafkaUserStore(null);
    users.putUser('alice', 'wonderland');
    const token = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: 120 }).map((t) => Buffer.from(t)),
      fc.tuple(fc.constantFrom('n,,', 'y,,', 'n,a=alice,', 'p=x,,', ''), fc.string({ maxLength: 60 })).map(([h, t]) => Buffer.from(`${h}n=alice,r=${t}`)),
    );
    fc.assert(
      fc.property(fc.constantFrom('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'), token, token, (mechanism, first, second) => {
        const exchange = startExchange(mechanism as 'PLAIN', users);
        for (const t of [first, second]) {
          try {
            exchange.step(t);
          } catch (error) {
            if (!(error instanceof SaslFailure)) throw error;
            return;
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('fails closed on a users file it cannot read: authentication required, and no one passes', () => {
    const broken = mkdtempSync(join(dir, 'broken-'));
    writeFileSync(join(broken, KAFKA_USERS_FILE), '{"users": [ {"name": "svc", ');
    const store = new KafkaUserStore(broken);
    expect(store.required).toBe(true);
    expect(store.problem).toMatch(/kafka-users\.json cannot be read/);
    expect(() => startExchange('PLAIN', store).step(Buffer.from('\0svc\0anything'))).toThrow(SaslFailure);
  });
});
