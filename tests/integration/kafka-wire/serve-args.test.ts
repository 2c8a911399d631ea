import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../../src-main/transports/http/serve.js';

describe('serve --kafka-port', () => {
  it('takes a port, 0 for a free one, or off; anything else is refused naming the option', () => {
    expect(parseServeArgs(['--token', 't'])).not.toHaveProperty('kafkaPort');
    expect(parseServeArgs(['--token', 't', '--kafka-port', '19092'])).toMatchObject({ kafkaPort: 19092 });
    expect(parseServeArgs(['--token', 't', '--kafka-port', '0'])).toMatchObject({ kafkaPort: 0 });
    expect(parseServeArgs(['--token', 't', '--kafka-port', 'off'])).toMatchObject({ kafkaPort: null });
    expect(() => parseServeArgs(['--token', 't', '--kafka-port', '70000'])).toThrow(/--kafka-port: expected a port from 0 to 65535 or "off"/);
  });
});
