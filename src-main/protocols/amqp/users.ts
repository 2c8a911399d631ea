/**
 * Users of the AMQP listener and their per-vhost permissions, as RabbitMQ
 * keeps them: a password stored as RabbitMQ's `rabbit_password_hashing_sha256`
 * does (base64 of a 4-byte random salt followed by SHA-256(salt ‖ password)),
 * and for each virtual host three regular expressions, configure, write and
 * read, matched against resource names.
 *
 * They live in `amqp-users.json` in the data folder, written with mode 0600
 * (a temporary file renamed over the old one, so a crash leaves one or the
 * other). Without a data folder they live in memory. When there is no file
 * yet, there is one user, `guest` with password `guest` and every permission
 * on `/`, who (as in RabbitMQ's `loopback_users`) may only connect from this
 * machine.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Permissions {
  configure: string;
  write: string;
  read: string;
}

export interface StoredUser {
  name: string;
  /** base64(salt ‖ sha256(salt ‖ password)), RabbitMQ's format. */
  passwordHash: string;
  hashingAlgorithm: 'rabbit_password_hashing_sha256';
  tags: string[];
  /** By vhost name. */
  permissions: Record<string, Permissions>;
}

export type PermissionKind = keyof Permissions;

export const USERS_FILE = 'amqp-users.json';

/** Users allowed in only from loopback (RabbitMQ's default `loopback_users`). */
export const LOOPBACK_USERS: ReadonlySet<string> = new Set(['guest']);

export function hashPassword(password: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256').update(salt).update(Buffer.from(password, 'utf8')).digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

export function checkPassword(password: string, stored: string): boolean {
  const raw = Buffer.from(stored, 'base64');
  if (raw.length !== 36) return false;
  const expected = Buffer.from(hashPassword(password, raw.subarray(0, 4)), 'base64');
  return timingSafeEqual(raw, expected);
}

const ALL: Permissions = { configure: '.*', write: '.*', read: '.*' };

function checkRegex(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new Error(`${field}: expected a regular expression (string)`);
  try {
    new RegExp(value);
  } catch (err) {
    throw new Error(`${field}: not a valid regular expression (${(err as Error).message})`);
  }
  return value;
}

export class UserStore {
  private readonly users = new Map<string, StoredUser>();
  private readonly compiled = new Map<string, RegExp>();

  constructor(private readonly dataDir: string | null) {
    const file = dataDir ? join(dataDir, USERS_FILE) : null;
    if (file && existsSync(file)) {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { users?: StoredUser[] };
      for (const u of parsed.users ?? []) if (u && typeof u.name === 'string' && typeof u.passwordHash === 'string') this.users.set(u.name, { ...u, tags: u.tags ?? [], permissions: u.permissions ?? {} });
    } else {
      this.users.set('guest', { name: 'guest', passwordHash: hashPassword('guest'), hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'], permissions: { '/': { ...ALL } } });
    }
  }

  /** The user when the password matches, else null (an unknown user and a wrong password look the same). */
  authenticate(name: string, password: string): StoredUser | null {
    const u = this.users.get(name);
    return u && checkPassword(password, u.passwordHash) ? u : null;
  }

  get(name: string): StoredUser | undefined {
    return this.users.get(name);
  }

  list(): Array<Omit<StoredUser, 'passwordHash'>> {
    return [...this.users.values()].map(({ passwordHash: _h, ...rest }) => rest);
  }

  /** Adds a user or changes one's password and tags (permissions are kept). */
  putUser(name: string, password: string, tags: string[] = []): void {
    if (typeof name !== 'string' || name === '' || Buffer.byteLength(name) > 255) throw new Error('name: expected 1 to 255 bytes');
    if (typeof password !== 'string') throw new Error('password: expected a string');
    const old = this.users.get(name);
    this.users.set(name, { name, passwordHash: hashPassword(password), hashingAlgorithm: 'rabbit_password_hashing_sha256', tags, permissions: old?.permissions ?? {} });
    this.save();
  }

  deleteUser(name: string): boolean {
    const had = this.users.delete(name);
    if (had) this.save();
    return had;
  }

  setPermissions(name: string, vhost: string, p: Permissions): void {
    const u = this.users.get(name);
    if (!u) throw new Error(`user ${JSON.stringify(name)} does not exist`);
    u.permissions[vhost] = { configure: checkRegex(p.configure, 'configure'), write: checkRegex(p.write, 'write'), read: checkRegex(p.read, 'read') };
    this.save();
  }

  clearPermissions(name: string, vhost: string): void {
    const u = this.users.get(name);
    if (u && delete u.permissions[vhost]) this.save();
  }

  /** Whether the user may use the vhost at all (has a permission entry for it). */
  canAccess(user: StoredUser, vhost: string): boolean {
    return Object.hasOwn(user.permissions, vhost);
  }

  /** As RabbitMQ: the pattern is searched in the name (not anchored; `^$` or an empty pattern matches nothing useful). */
  allows(user: StoredUser, vhost: string, kind: PermissionKind, resource: string): boolean {
    const p = user.permissions[vhost];
    if (!p) return false;
    const pattern = p[kind];
    if (pattern === '') return false;
    let re = this.compiled.get(pattern);
    if (!re) this.compiled.set(pattern, (re = new RegExp(pattern)));
    return re.test(resource);
  }

  private save(): void {
    if (!this.dataDir) return;
    const file = join(this.dataDir, USERS_FILE);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ users: [...this.users.values()] }, null, 2), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }
}
