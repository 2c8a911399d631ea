/**
 * Encryption at rest for saved connections. A 32-byte data key seals each
 * connection's configuration with AES-256-GCM. Where the key comes from:
 *  - desktop: the main process keeps the key encrypted by Electron's
 *    `safeStorage` (the OS keychain) and hands it to the core at start-up in
 *    BROKERDECK_SECRET_KEY;
 *  - headless: a key file, `secret.key`, in the data directory, created with
 *    mode 0600 (readable by its owner only).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretBox {
  seal(plaintext: string): Buffer;
  open(sealed: Buffer): string;
}

const VERSION = 1;

export function secretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('the secret key must be 32 bytes');
  return {
    seal(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
    },
    open(sealed) {
      if (sealed[0] !== VERSION) throw new Error('unknown secret format');
      const iv = sealed.subarray(1, 13);
      const tag = sealed.subarray(13, 29);
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString('utf8');
    },
  };
}

/** The data key: from the desktop shell if it gave one, else the data directory's key file. */
export function loadSecretKey(dataDir: string | null, env: NodeJS.ProcessEnv = process.env): Buffer {
  const given = env.BROKERDECK_SECRET_KEY;
  if (given) {
    const key = Buffer.from(given, 'base64');
    if (key.length === 32) return key;
    throw new Error('BROKERDECK_SECRET_KEY must be 32 bytes, base64-encoded');
  }
  if (!dataDir) return randomBytes(32);
  const file = join(dataDir, 'secret.key');
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  }
  if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} is damaged: expected 32 base64-encoded bytes`);
  return key;
}
