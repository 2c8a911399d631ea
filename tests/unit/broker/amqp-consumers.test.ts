/**
 * What the engine adds for AMQP clients: a prefetch limit shared by a
 * channel's consumers (basic.qos global=true, RabbitMQ's meaning), and
 * basic.get whose message stays unacked until settled or its owner closes.
 */
import { describe, expect, it } from 'vitest';
import type { SharedPrefetch } from '../../../src-main/broker/types.js';
import { collector, memEngine, publishAll, settle } from './helpers.js';

describe('shared prefetch (basic.qos global=true)', () => {
  it('caps the unacked deliveries of all its consumers together, and frees room on ack', async () => {
    const e = memEngine();
    e.declareQueue('a');
    e.declareQueue('b');
    await publishAll(e, 'a', ['a1', 'a2', 'a3']);
    await publishAll(e, 'b', ['b1', 'b2', 'b3']);
    const shared: SharedPrefetch = { limit: 3, unacked: 0 };
    const ca = collector();
    const cb = collector();
    e.consume('a', { shared, owner: 'ch' }, ca.on);
    e.consume('b', { shared, owner: 'ch' }, cb.on);
    await settle(e);
    expect(ca.deliveries.length + cb.deliveries.length).toBe(3);
    expect(shared.unacked).toBe(3);
    e.ack((ca.deliveries[0] ?? cb.deliveries[0])!.deliveryTag);
    await settle(e);
    expect(ca.deliveries.length + cb.deliveries.length).toBe(4);
    e.setSharedPrefetch(shared, 0);
    await settle(e);
    expect(ca.deliveries.length + cb.deliveries.length).toBe(6);
    e.closeOwner('ch');
    expect(shared.unacked).toBe(0);
    e.close();
  });

  it('works beside a per-consumer prefetch: the smaller room wins', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', ['1', '2', '3', '4']);
    const shared: SharedPrefetch = { limit: 10, unacked: 0 };
    const c = collector();
    e.consume('q', { shared, prefetch: 1 }, c.on);
    await settle(e);
    expect(c.bodies()).toEqual(['1']);
    e.close();
  });

  it('deleting a queue gives back the room its consumers held', async () => {
    const e = memEngine();
    e.declareQueue('gone');
    await publishAll(e, 'gone', ['x', 'y']);
    const shared: SharedPrefetch = { limit: 5, unacked: 0 };
    e.consume('gone', { shared }, () => {});
    await settle(e);
    expect(shared.unacked).toBe(2);
    e.deleteQueue('gone');
    expect(shared.unacked).toBe(0);
    e.close();
  });
});

describe('basicGet', () => {
  it('keeps the message unacked for its owner until ack, and returns it marked redelivered when the owner closes', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', ['one', 'two']);
    const got = e.basicGet('q', { owner: 'ch1' })!;
    expect(got.delivery.body.toString()).toBe('one');
    expect(got.messageCount).toBe(1);
    expect(e.getQueue('q')).toMatchObject({ ready: 1, unacked: 1, consumers: 0 });
    e.closeOwner('ch1');
    await settle(e);
    expect(e.getQueue('q')).toMatchObject({ ready: 2, unacked: 0 });
    const again = e.basicGet('q', { owner: 'ch2' })!;
    expect([again.delivery.body.toString(), again.delivery.redelivered]).toEqual(['one', true]);
    e.ack(again.delivery.deliveryTag);
    await settle(e);
    expect(e.getQueue('q')).toMatchObject({ ready: 1, unacked: 0, messages: 1 });
    const noAck = e.basicGet('q', { owner: 'ch2', noAck: true })!;
    expect(noAck.delivery.body.toString()).toBe('two');
    expect(e.basicGet('q', { owner: 'ch2' })).toBeNull();
    expect(e.getQueue('q').messages).toBe(0);
    e.close();
  });

  it('refuses an exclusive queue of another connection', () => {
    const e = memEngine();
    e.declareQueue('x', { exclusive: true, owner: 'conn-1' });
    expect(() => e.basicGet('x', { owner: 'conn-2#1', connection: 'conn-2' })).toThrow(/exclusive/);
    expect(e.basicGet('x', { owner: 'conn-1#1', connection: 'conn-1' })).toBeNull();
    e.close();
  });
});
