import { it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../src-main/broker/index.js';
it('probe', async () => {
  for (const sync of ['full', 'normal'] as const) {
  const dir = mkdtempSync(join(tmpdir(), 'bd-probe-'));
  const e = Engine.open({ dataDir: dir, timers: false, synchronous: sync });
  e.declareQueue('q');
  const body = Buffer.alloc(1024, 97);
  const N = 200_000;
  let got = 0;
  const t0 = performance.now();
  const done = new Promise<void>((res) => {
    e.consume('q', { prefetch: 1000 }, (d) => { e.ack(d.deliveryTag); if (++got === N) res(); });
  });
  const ps: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    ps.push(e.publish({ exchange: '', routingKey: 'q', body, properties: { deliveryMode: 2 } }));
    if (i % 2000 === 1999) { await Promise.all(ps); ps.length = 0; }
  }
  await Promise.all(ps);
  await done;
  const dt = performance.now() - t0;
  console.log(sync, 'pub+consume+ack msg/s', Math.round(N / (dt / 1000)));
  // publish only
  const t1 = performance.now();
  for (let i = 0; i < N; i++) {
    ps.push(e.publish({ exchange: '', routingKey: 'q2', body, properties: { deliveryMode: 2 } }));
    if (i % 2000 === 1999) { await Promise.all(ps); ps.length = 0; }
  }
  e.declareQueue('q2');
  const t2 = performance.now();
  for (let i = 0; i < N; i++) {
    ps.push(e.publish({ exchange: '', routingKey: 'q2', body, properties: { deliveryMode: 2 } }));
    if (i % 2000 === 1999) { await Promise.all(ps); ps.length = 0; }
  }
  await Promise.all(ps);
  console.log(sync, 'unroutable publish/s', Math.round(N / ((t2 - t1) / 1000)), 'publish-only msg/s', Math.round(N / ((performance.now() - t2) / 1000)));
  e.close();
  rmSync(dir, { recursive: true, force: true });
  }
}, 120000);
