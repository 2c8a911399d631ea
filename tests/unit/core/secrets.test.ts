import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadSecretKey, secretBox } from '../../../src-main/core/secrets.js';
import { redact } from '../../../src-main/ground/logger.js';

describe('secrets at rest', () => {
  it('seals and opens, and a sealed value does not contain the plaintext', () => {
    const box = secretBox(randomBytes(32));
    const sealed = box.seal('amqp://guest:s3cret-pass@host/vh');
    expect(sealed.toString('latin1')).not.toContain('s3cret-pass');
    expect(box.open(sealed)).toBe('amqp://guest:s3cret-pass@host/vh');
  });

  it('refuses a tampered value and a wrong key', () => {
    const box = secretBox(randomBytes(32));
    const sealed = box.seal('secret');
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    expect(() => box.open(tampered)).toThrow();
    expect(() => secretBox(randomBytes(32)).open(sealed)).toThrow();
  });

  it('creates the headless key file readable by its owner only, and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bd-secret-'));
    try {
      const a = loadSecretKey(dir, {});
      const mode = statSync(join(dir, 'secret.key')).mode & 0o777;
      expect(mode).toBe(0o600);
      expect(loadSecretKey(dir, {}).equals(a)).toBe(true);
      expect(readFileSync(join(dir, 'secret.key'), 'utf8').trim()).toBe(a.toString('base64'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the key handed over by the desktop shell', () => {
    const key = randomBytes(32);
    expect(loadSecretKey(null, { BROKERDECK_SECRET_KEY: key.toString('base64') }).equals(key)).toBe(true);
    expect(() => loadSecretKey(null, { BROKERDECK_SECRET_KEY: 'c2hvcnQ=' })).toThrow(/32 bytes/);
  });
});

describe('log redaction', () => {
  it('hides secret fields and passwords inside URLs', () => {
    expect(redact({ password: 'x', token: 't', url: 'amqp://guest:hunter2@h:5672/v', n: 1 })).toEqual({
      password: '[redacted]',
      token: '[redacted]',
      url: 'amqp://guest:[redacted]@h:5672/v',
      n: 1,
    });
  });
});
