import { describe, it, expect } from 'vitest';
import { Engine } from '../../../src-main/broker/index.js';
import { GroupCoordinator, type GroupProtocol } from '../../../src-main/broker/group-coordinator.js';

const SESSION = 10_000;
const REBALANCE = 5_000;

function setup() {
  let now = 1_000_000;
  const clock = { advance: (ms: number) => (now += ms) };
  const c = new GroupCoordinator(() => now);
  const proto = (name: string, meta = name): GroupProtocol => ({ name, metadata: Buffer.from(meta) });
  const join = (memberId: string, clientId = 'c', protocols = [proto('range', `m-${clientId}`)], sessionTimeoutMs = SESSION, rebalanceTimeoutMs = REBALANCE) =>
    c.joinGroup({ groupId: 'g', memberId, clientId, protocolType: 'consumer', protocols, sessionTimeoutMs, rebalanceTimeoutMs });
  /** Whether a promise has settled (after pending microtasks ran). */
  const settled = async (p: Promise<unknown>) => {
    let done = false;
    void p.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    return done;
  };
  return { c, clock, proto, join, settled };
}

describe('group coordinator (Kafka classic group protocol)', () => {
  it('runs join, sync and heartbeats over generations, with the leader assigning', async () => {
    const { c, join, settled } = setup();
    const a = await join('', 'a');
    expect(a).toMatchObject({ error: null, generation: 1, protocol: 'range', leader: a.memberId });
    expect(a.memberId).toMatch(/^a-/);
    expect(a.members).toEqual([{ memberId: a.memberId, metadata: Buffer.from('m-a') }]);
    expect(c.describe('g')?.state).toBe('CompletingRebalance');
    expect(await c.syncGroup({ groupId: 'g', generation: 1, memberId: a.memberId, assignments: [{ memberId: a.memberId, assignment: Buffer.from('all') }] })).toEqual({ error: null, assignment: Buffer.from('all') });
    expect(c.describe('g')?.state).toBe('Stable');
    expect(c.heartbeat('g', 1, a.memberId)).toBeNull();

    // A second member: its join waits until the first rejoins, which it learns from a heartbeat.
    const bJoin = join('', 'b');
    expect(await settled(bJoin)).toBe(false);
    expect(c.describe('g')?.state).toBe('PreparingRebalance');
    expect(c.heartbeat('g', 1, a.memberId)).toBe('REBALANCE_IN_PROGRESS');
    const a2 = await join(a.memberId, 'a');
    const b = await bJoin;
    expect(a2).toMatchObject({ generation: 2, leader: a.memberId });
    expect(a2.members.map((m) => m.memberId)).toEqual([a.memberId, b.memberId]);
    expect(b).toMatchObject({ error: null, generation: 2, leader: a.memberId, members: [] });

    // The follower's sync waits for the leader's, which carries every assignment.
    const bSync = c.syncGroup({ groupId: 'g', generation: 2, memberId: b.memberId, assignments: [] });
    expect(await settled(bSync)).toBe(false);
    const aSync = await c.syncGroup({
      groupId: 'g',
      generation: 2,
      memberId: a.memberId,
      assignments: [
        { memberId: a.memberId, assignment: Buffer.from('p0') },
        { memberId: b.memberId, assignment: Buffer.from('p1') },
      ],
    });
    expect(aSync.assignment.toString()).toBe('p0');
    expect((await bSync).assignment.toString()).toBe('p1');
    expect(c.heartbeat('g', 1, b.memberId)).toBe('ILLEGAL_GENERATION');
    expect(c.heartbeat('g', 2, 'nobody')).toBe('UNKNOWN_MEMBER_ID');
    expect(c.heartbeat('g', 2, b.memberId)).toBeNull();
    expect(c.describe('g')).toMatchObject({ state: 'Stable', generation: 2, protocol: 'range', leader: a.memberId });
  });

  it('removes a member whose session timed out, and the rest rebalance', async () => {
    const { c, clock, join } = setup();
    const a = await join('', 'a');
    const bJoin = join('', 'b');
    await join(a.memberId, 'a');
    const b = await bJoin;
    await Promise.all([
      c.syncGroup({ groupId: 'g', generation: 2, memberId: b.memberId, assignments: [] }),
      c.syncGroup({ groupId: 'g', generation: 2, memberId: a.memberId, assignments: [] }),
    ]);
    // Only the first member heartbeats; the second goes silent past its session.
    for (let t = 0; t <= SESSION; t += 2_000) {
      clock.advance(2_000);
      expect(c.heartbeat('g', 2, a.memberId)).toBeNull();
      c.tick();
    }
    expect(c.describe('g')?.members.map((m) => m.memberId)).toEqual([a.memberId]);
    expect(c.heartbeat('g', 2, a.memberId)).toBe('REBALANCE_IN_PROGRESS');
    expect(await join(a.memberId, 'a')).toMatchObject({ generation: 3, leader: a.memberId, members: [{ memberId: a.memberId }] });
    expect(c.heartbeat('g', 2, b.memberId)).toBe('UNKNOWN_MEMBER_ID');
  });

  it('completes a rebalance without the members that did not rejoin within the rebalance timeout', async () => {
    const { c, clock, join } = setup();
    const a = await join('', 'a');
    const bJoin = join('', 'b');
    await join(a.memberId, 'a');
    const b = await bJoin;
    const cJoin = join('', 'c');
    const aJoin = join(a.memberId, 'a');
    // b never rejoins: its session (10 s) outlasts the rebalance timeout (5 s), which decides.
    clock.advance(REBALANCE);
    c.tick();
    const [a3, c3] = await Promise.all([aJoin, cJoin]);
    expect(a3.generation).toBe(3);
    expect(a3.members.map((m) => m.memberId)).toEqual([a.memberId, c3.memberId]);
    expect(c.heartbeat('g', 3, b.memberId)).toBe('UNKNOWN_MEMBER_ID');
  });

  it('chooses the protocol by the members\' votes among those all support, and refuses a member that shares none', async () => {
    const { c, join, proto } = setup();
    const a = await join('', 'a', [proto('range'), proto('roundrobin')]);
    expect(a.protocol).toBe('range');
    const bJoin = join('', 'b', [proto('roundrobin'), proto('range')]);
    const cJoin = join('', 'c', [proto('roundrobin')]);
    const a2 = await join(a.memberId, 'a', [proto('range'), proto('roundrobin')]);
    await Promise.all([bJoin, cJoin]);
    expect(a2.protocol).toBe('roundrobin');
    expect(a2.members.find((m) => m.memberId === a.memberId)?.metadata.toString()).toBe('roundrobin');
    expect(await join('', 'd', [proto('sticky')])).toMatchObject({ error: 'INCONSISTENT_GROUP_PROTOCOL' });
    expect(c.describe('g')?.members).toHaveLength(3);
  });

  it('lets a member leave (the others rebalance), refuses unknown members and session timeouts out of range', async () => {
    const { c, join } = setup();
    const a = await join('', 'a');
    expect(c.leaveGroup('g', 'nobody')).toBe('UNKNOWN_MEMBER_ID');
    expect(c.leaveGroup('g', a.memberId)).toBeNull();
    expect(c.describe('g')).toMatchObject({ state: 'Empty', members: [] });
    expect(await join('someone-unknown', 'x')).toMatchObject({ error: 'UNKNOWN_MEMBER_ID' });
    expect(await join('', 'x', undefined, 1_000)).toMatchObject({ error: 'INVALID_SESSION_TIMEOUT' });
  });
});

describe('groups driven through the engine\'s coordinator', () => {
  it('are listed with their members, and refuse offset resets and deletion while they have any', async () => {
    const e = Engine.open({ dataDir: null, timers: false });
    try {
      e.createTopic('orders', { partitions: 2 });
      await e.produce('orders', [{ key: 'a', value: '1' }, { key: 'b', value: '2' }]);
      const joined = await e.groupCoordinator.joinGroup({
        groupId: 'billing',
        memberId: '',
        clientId: 'billing-app',
        protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 5_000,
      });
      await e.commitOffsets('billing', [{ topic: 'orders', partition: 0, offset: 0 }]);
      const group = e.listGroups().find((g) => g.groupId === 'billing');
      expect(group).toMatchObject({ state: 'Stable', generation: 1, members: [{ memberId: joined.memberId, assignments: [] }] });
      expect(e.planGroupReset({ groupId: 'billing', to: 'earliest' })).toMatchObject({ canApply: false, reason: expect.stringMatching(/1 active member/) });
      await expect(e.deleteGroup('billing')).rejects.toThrow(/1 active member/);

      expect(e.groupCoordinator.leaveGroup('billing', joined.memberId)).toBeNull();
      expect(e.listGroups().find((g) => g.groupId === 'billing')).toMatchObject({ state: 'Empty', members: [] });
      await e.deleteGroup('billing');
      expect(e.listGroups().find((g) => g.groupId === 'billing')).toBeUndefined();
    } finally {
      e.close();
    }
  });
});

describe('direct members (the app\'s own consumers) in the coordinator', () => {
  it('are assigned by the broker with the RangeAssignor, and never share a group with Kafka clients', async () => {
    const { c, join } = setup();
    const partitions = (t: string) => (t === 'orders' ? 3 : undefined);
    const one = c.joinDirect('app', 'm-1', ['orders', 'missing'], partitions);
    expect(one).toMatchObject({ generation: 1, assignments: [0, 1, 2].map((p) => ({ topic: 'orders', partition: p })) });
    const two = c.joinDirect('app', 'm-2', ['orders'], partitions);
    expect(two.members).toEqual([
      { memberId: 'm-1', assignments: [{ topic: 'orders', partition: 0 }, { topic: 'orders', partition: 1 }] },
      { memberId: 'm-2', assignments: [{ topic: 'orders', partition: 2 }] },
    ]);
    c.dropTopic('orders');
    expect(c.directMembers('app').every((m) => m.assignments.length === 0)).toBe(true);
    expect(c.ids()).toEqual(['app']);

    // A Kafka client may not join a group of direct members, nor the other way round.
    const refused = await c.joinGroup({ groupId: 'app', memberId: '', clientId: 'k', protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], sessionTimeoutMs: SESSION, rebalanceTimeoutMs: REBALANCE });
    expect(refused.error).toBe('INCONSISTENT_GROUP_PROTOCOL');
    await join('', 'k');
    expect(() => c.joinDirect('g', 'm-3', ['orders'], partitions)).toThrow(/Kafka clients as members/);

    expect(() => c.leaveDirect('app', 'nobody', partitions)).toThrow(/not in group/);
    c.leaveDirect('app', 'm-1', partitions);
    expect(c.leaveDirect('app', 'm-2', partitions)).toMatchObject({ members: [] });
    expect(c.describe('app')?.state).toBe('Empty');
    expect(c.known()).toContain('app');
    c.forget('app');
    expect(c.known()).not.toContain('app');
  });
});
