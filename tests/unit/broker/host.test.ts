import { describe, it, expect } from 'vitest';
import { BrokerHost } from '../../../src-main/broker/host.js';
import type { RedriveJob, TopicRecordEvent } from '../../../src-main/broker/index.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { waitFor } from './helpers.js';

describe('the broker host', () => {
  it('holds the engine, relays its events and closes it', async () => {
    const host = BrokerHost.open({ dataDir: null, logger: silentLogger });
    const engine = host.engine;
    expect(host.live()).toBe(engine);
    expect(host.storeError).toBeNull();

    const records: TopicRecordEvent[] = [];
    const jobs: RedriveJob[] = [];
    host.events.on('record', (e) => records.push(e));
    host.events.on('redrive', (j) => jobs.push(j));
    engine.createTopic('t', { partitions: 1 });
    await engine.produce('t', [{ key: 'k', value: 'v' }]);
    await waitFor(() => records.length === 1);
    expect(records[0]).toMatchObject({ topic: 't', record: { partition: 0, offset: 0 } });

    engine.declareQueue('q.dlq');
    await engine.publish({ exchange: '', routingKey: 'q.dlq', body: Buffer.from('x') });
    engine.declareQueue('q');
    engine.startRedrive({ source: 'q.dlq', all: true, target: { exchange: '', routingKey: 'q' } });
    await waitFor(() => jobs.some((j) => j.state === 'completed'));

    host.close();
    expect(host.isClosed).toBe(true);
    expect(engine.isClosed).toBe(true);
    expect(() => engine.declareQueue('after')).toThrow(/closed/);
  });
});
