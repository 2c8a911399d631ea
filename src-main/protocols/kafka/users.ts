/**
 * Users of the Kafka listener, kept as Kafka keeps SCRAM credentials
 * (RFC 5802, KIP-84): per mechanism a random salt, an iteration count, and
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
 * ServerKey = HMAC(SaltedPassword, "Server Key"), never the password.
 * PLAIN is checked against the same credentials.
 *
 * They live in `kafka-users.json` in the data folder, written with mode 0600
 * (a temporary file renamed over the old one, so a crash leaves one or the
 * other). Without a data folder they live in memory. While there are none,
 * the listener asks for no authentication; once there is one, every client
 * must authenticate (SASL_PLAINTEXT, or SASL_SSL with TLS).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const KAFKA_USERS_FILE = 'kafka-users.json';

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';
export const SCRAM_MECHANISMS: readonly ScramMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512'];
/** Kafka's ScramMechanism type codes (AlterUserScramCredentials, DescribeUserScramCredentials). */
export const SCRAM_TYPE: Record<ScramMechanism, number> = { 'SCRAM-SHA-256': 1, 'SCRAM-SHA-512': 2 };

/** Kafka's default and minimum iteration count (kafka-configs uses 4096). */
export const SCRAM_ITERATIONS = 4096;
export const MIN_ITERATIONS = 4096;
export const MAX_ITERATIONS = 16384;

export interface ScramCredential {
  /** base64 */
  salt: string;
  storedKey: string;
  serverKey: string;
  iterations: number;
}

export interface KafkaUser {
  name: string;
  credentials: Partial<Record<ScramMechanism, ScramCredential>>;
}

export function digestOf(mechanism: ScramMechanism): 'sha256' | 'sha512' {
  return mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512';
}

/** RFC 5802's Hi(): PBKDF2 with HMAC of the mechanism's hash. */
export function saltedPassword(mechanism: ScramMechanism, password: string, salt: Buffer, iterations: number): Buffer {
  const hash = digestOf(mechanism);
  // UTF-8 as given, as Kafka's ScramFormatter does (no SASLprep): clients salt the same bytes.
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, hash === 'sha256' ? 32 : 64, hash);
}

/** The credential Kafka stores, from a salted password (as AlterUserScramCredentials sends it). */
export function credentialFrom(mechanism: ScramMechanism, salted: Buffer, salt: Buffer, iterations: number): ScramCredential {
  const hash = digestOf(mechanism);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  return {
    salt: salt.toString('base64'),
    storedKey: createHash(hash).update(clientKey).digest('base64'),
    serverKey: createHmac(hash, salted).update('Server Key').digest('base64'),
    iterations,
  };
}

export function makeCredential(mechanism: ScramMechanism, password: string, iterations = SCRAM_ITERATIONS): ScramCredential {
  const salt = randomBytes(32);
  return credentialFrom(mechanism, saltedPassword(mechanism, password, salt, iterations), salt, iterations);
}

/** Whether the password gives this credential's StoredKey (compared in constant time). */
export function passwordMatches(mechanism: ScramMechanism, password: string, c: ScramCredential): boolean {
  const computed = credentialFrom(mechanism, saltedPassword(mechanism, password, Buffer.from(c.salt, 'base64'), c.iterations), Buffer.from(c.salt, 'base64'), c.iterations);
  const a = Buffer.from(computed.storedKey, 'base64');
  const b = Buffer.from(c.storedKey, 'base64');
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name) > 255) throw new Error('name: expected 1 to 255 bytes');
  return name;
}

export class KafkaUserStore {
  private readonly users = new Map<string, KafkaUser>();
  /** Why the users file could not be read; while set, no one can authenticate (closed, not open). */
  readonly problem: string | null = null;

  constructor(private readonly dataDir: string | null) {
    const file = dataDir ? join(dataDir, KAFKA_USERS_FILE) : null;
    if (!file || !existsSync(file)) return;
    try {
      this.read(file);
    } catch (error) {
      this.users.clear();
      this.problem = `${file} cannot be read (${(error as Error).message})`;
    }
  }

  private read(file: string): void {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { users?: KafkaUser[] };
    for (const u of parsed.users ?? []) {
      if (!u || typeof u.name !== 'string' || !u.credentials || typeof u.credentials !== 'object') continue;
      const credentials: KafkaUser['credentials'] = {};
      for (const m of SCRAM_MECHANISMS) {
        const c = u.credentials[m];
        if (c && typeof c.salt === 'string' && typeof c.storedKey === 'string' && typeof c.serverKey === 'string' && Number.isInteger(c.iterations)) credentials[m] = c;
      }
      this.users.set(u.name, { name: u.name, credentials });
    }
  }

  /** True when clients must authenticate. */
  get required(): boolean {
    return this.users.size > 0 || this.problem !== null;
  }

  get(name: string): KafkaUser | undefined {
    return this.users.get(name);
  }

  names(): string[] {
    return [...this.users.keys()].sort();
  }

  /** Adds a user or changes one's password: credentials for both SCRAM mechanisms, salted afresh. */
  putUser(name: string, password: string, iterations = SCRAM_ITERATIONS): void {
    this.setPassword(name, password, SCRAM_MECHANISMS, iterations, true);
  }

  /**
   * Adds a user or changes one's password for the given mechanisms, each salted
   * afresh, saved at once (Kafka's AlterUserScramCredentials upsertions, with the
   * salting done here). The user's credentials for other mechanisms are kept
   * unless `replace`.
   */
  setPassword(name: string, password: string, mechanisms: readonly ScramMechanism[], iterations = SCRAM_ITERATIONS, replace = false): void {
    checkName(name);
    if (typeof password !== 'string' || password === '') throw new Error('password: expected a non-empty string');
    if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) throw new Error(`iterations: expected ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`);
    if (mechanisms.length === 0 || mechanisms.some((m) => !SCRAM_MECHANISMS.includes(m))) throw new Error(`mechanisms: expected one or more of ${SCRAM_MECHANISMS.join(', ')}`);
    const credentials: KafkaUser['credentials'] = replace ? {} : { ...this.users.get(name)?.credentials };
    for (const m of mechanisms) credentials[m] = makeCredential(m, password, iterations);
    this.users.set(name, { name, credentials });
    this.save();
  }

  /** Every user with the mechanisms and iteration counts of its credentials: nothing secret. */
  describe(): Array<{ name: string; credentials: Array<{ mechanism: ScramMechanism; iterations: number }> }> {
    return this.names().map((name) => {
      const u = this.users.get(name)!;
      return { name, credentials: SCRAM_MECHANISMS.filter((m) => u.credentials[m]).map((m) => ({ mechanism: m, iterations: u.credentials[m]!.iterations })) };
    });
  }

  /** Sets one mechanism's credential (what AlterUserScramCredentials upserts). */
  putCredential(name: string, mechanism: ScramMechanism, credential: ScramCredential): void {
    checkName(name);
    const u = this.users.get(name) ?? { name, credentials: {} };
    u.credentials[mechanism] = credential;
    this.users.set(name, u);
    this.save();
  }

  /** Removes one mechanism's credential; the user goes with its last one. False when there was none. */
  deleteCredential(name: string, mechanism: ScramMechanism): boolean {
    const u = this.users.get(name);
    if (!u || !u.credentials[mechanism]) return false;
    delete u.credentials[mechanism];
    if (Object.keys(u.credentials).length === 0) this.users.delete(name);
    this.save();
    return true;
  }

  deleteUser(name: string): boolean {
    const had = this.users.delete(name);
    if (had) this.save();
    return had;
  }

  private save(): void {
    if (!this.dataDir) return;
    const file = join(this.dataDir, KAFKA_USERS_FILE);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ users: [...this.users.values()] }, null, 2), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }
}
