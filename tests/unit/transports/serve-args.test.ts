import { describe, it, expect } from 'vitest';
import { parseBytes, parseServeArgs } from '../../../src-main/transports/http/serve.js';

describe('brokerdeck serve options', () => {
  it('reads sizes with RabbitMQ units', () => {
    expect(parseBytes('50MB', '--x')).toBe(50_000_000);
    expect(parseBytes('2GiB', '--x')).toBe(2 * 2 ** 30);
    expect(parseBytes('1.5 GB', '--x')).toBe(1_500_000_000);
    expect(parseBytes('1000000', '--x')).toBe(1_000_000);
    expect(parseBytes('0', '--x')).toBe(0);
    expect(() => parseBytes('fifty', '--disk-free-limit')).toThrow('--disk-free-limit: expected a size such as 50MB, 2GiB or 1000000 (bytes), got "fifty"');
    expect(() => parseBytes('5 parsecs', '--disk-free-limit')).toThrow(/--disk-free-limit/);
  });

  it('passes --disk-free-limit on, and leaves the default alone without it', () => {
    expect(parseServeArgs(['--disk-free-limit', '1GB', '--token', 't'])).toMatchObject({ diskFreeLimit: 1_000_000_000 });
    expect(parseServeArgs(['--token', 't'])).not.toHaveProperty('diskFreeLimit');
    expect(() => parseServeArgs(['--disk-free-limit', '-3', '--token', 't'])).toThrow(/--disk-free-limit/);
  });
});
