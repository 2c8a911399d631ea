import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { checkPassword, hashPassword, USERS_FILE, UserStore } from '../../../../src-main/protocols/amqp/users.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'brokerdeck-amqp-users-'));
  dirs.push(d);
  return d;
}

/** Read from RabbitMQ's management API (GET /api/users/guest) on a RabbitMQ whose guest password is "guest". */
const RABBITMQ_GUEST_HASH = 'C/4tvVYykg90FKcbA9DU48Kxn2JR0N5GmO+ql/CQBnsIXHek';

describe('passwords', () => {
  test('a hash RabbitMQ made (rabbit_password_hashing_sha256) checks here, and ours has its shape', () => {
    expect(checkPassword('guest', RABBITMQ_GUEST_HASH)).toBe(true);
    expect(checkPassword('guest2', RABBITMQ_GUEST_HASH)).toBe(false);
    const h = hashPassword('s3cret');
    expect(Buffer.from(h, 'base64')).toHaveLength(36);
    expect(checkPassword('s3cret', h)).toBe(true);
    expect(hashPassword('s3cret')).not.toBe(h);
  });
});

describe('the user store', () => {
  test('starts with guest/guest on /, keeps users and permissions in a 0600 file, and reads them back', () => {
    const d = dir();
    const s = new UserStore(d);
    const guest = s.authenticate('guest', 'guest')!;
    expect(guest.permissions['/']).toEqual({ configure: '.*', write: '.*', read: '.*' });
    s.putUser('app', 'pw', ['monitoring']);
    s.setPermissions('app', '/', { configure: '^app\\.', write: '^app\\.', read: '.*' });
    expect(statSync(join(d, USERS_FILE)).mode & 0o777).toBe(0o600);
    const again = new UserStore(d);
    const app = again.authenticate('app', 'pw')!;
    expect(app.tags).toEqual(['monitoring']);
    expect(again.allows(app, '/', 'configure', 'app.orders')).toBe(true);
    expect(again.allows(app, '/', 'configure', 'orders')).toBe(false);
    expect(again.allows(app, 'other', 'read', 'x')).toBe(false);
    expect(again.authenticate('app', 'nope')).toBeNull();
    expect(again.list().some((u) => 'passwordHash' in u)).toBe(false);
  });

  test('an invalid permission pattern is refused, naming the field', () => {
    const s = new UserStore(null);
    expect(() => s.setPermissions('guest', '/', { configure: '(', write: '.*', read: '.*' })).toThrow(/configure: not a valid regular expression/);
  });

  test('an empty pattern grants nothing (RabbitMQ)', () => {
    const s = new UserStore(null);
    s.setPermissions('guest', '/', { configure: '', write: '.*', read: '.*' });
    expect(s.allows(s.get('guest')!, '/', 'configure', 'anything')).toBe(false);
  });
});
