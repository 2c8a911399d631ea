import { describe, expect, test } from 'vitest';
import { parseServeArgs } from '../../../src-main/transports/http/serve.js';

describe('serve --amqp-port', () => {
  test('a port, 0 for a free one, or off; absent keeps the default (5672)', () => {
    expect(parseServeArgs(['--token', 't', '--amqp-port', '5673']).amqpPort).toBe(5673);
    expect(parseServeArgs(['--token', 't', '--amqp-port', '0']).amqpPort).toBe(0);
    expect(parseServeArgs(['--token', 't', '--amqp-port', 'off']).amqpPort).toBeNull();
    expect(parseServeArgs(['--token', 't'])).not.toHaveProperty('amqpPort');
  });

  test('amqps takes a certificate and a key together', () => {
    expect(parseServeArgs(['--token', 't', '--amqp-tls-cert', 'c.pem', '--amqp-tls-key', 'k.pem']).amqpTls).toMatchObject({ cert: expect.stringMatching(/c\.pem$/), key: expect.stringMatching(/k\.pem$/) });
    expect(() => parseServeArgs(['--token', 't', '--amqp-tls-cert', 'c.pem'])).toThrow(/--amqp-tls-key: needed with --amqp-tls-cert/);
  });

  test('anything else is refused, naming the option', () => {
    expect(() => parseServeArgs(['--token', 't', '--amqp-port', '70000'])).toThrow(/--amqp-port: expected a port from 0 to 65535 or "off", got "70000"/);
    expect(() => parseServeArgs(['--token', 't', '--amqp-port', 'x'])).toThrow(/--amqp-port/);
  });
});
