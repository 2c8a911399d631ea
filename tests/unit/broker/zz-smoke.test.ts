import { it, expect } from 'vitest';
import { Engine } from '../../../src-main/broker/index.js';
it('smoke', async () => {
  const e = Engine.open({ dataDir: null, timers: false });
  e.declareQueue('q');
  for (let i = 0; i < 10; i++) await e.publish({ exchange: '', routingKey: 'q', body: Buffer.from('m' + i) });
  const got: string[] = [];
  e.consume('q', { prefetch: 3 }, (d) => { got.push(d.body.toString()); e.ack(d.deliveryTag); });
  await new Promise((r) => setTimeout(r, 50));
  expect(got).toEqual(Array.from({ length: 10 }, (_, i) => 'm' + i));
  console.log(e.getQueue('q'));
  e.close();
});
