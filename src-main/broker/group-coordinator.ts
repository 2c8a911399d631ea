/**
 * A group coordinator for Kafka's classic consumer group protocol, as a wire
 * listener drives it: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, with
 * generations, a leader that computes the assignment, session timeouts and
 * rebalance timeouts (Kafka's GroupCoordinator, `group.initial.rebalance.delay.ms`
 * of 0). The coordinator never looks inside protocol metadata or assignments:
 * they are the clients' bytes, handed from the members to the leader and from
 * the leader back to each member.
 *
 * States, as Kafka names them:
 *   Empty               no members (committed offsets may remain, elsewhere)
 *   PreparingRebalance  waiting for every known member to (re)join; joins are answered when it completes
 *   CompletingRebalance the new generation is set; waiting for the leader's SyncGroup with the assignment
 *   Stable              every member has its assignment; heartbeats keep members in
 *
 * Rules this file relies on:
 * - A rebalance completes once every member known when it began has rejoined,
 *   or when the longest rebalance timeout of the members has passed; members
 *   that did not rejoin by then are removed.
 * - A member is removed when no heartbeat, join or sync arrived for its
 *   session timeout; a member that leaves or is removed starts a rebalance.
 * - Errors are answered as Kafka's error names (never thrown), so a listener
 *   puts them on the wire as they are.
 *
 * Time comes from `now()`; deadlines are checked by `tick()` (the engine's
 * maintenance timer, or a test with a fake clock).
 *
 * It is also where the members of the app's own consumers live (the API's
 * joinGroup/leaveGroup): "direct" members, which run no client-side assignor,
 * so the coordinator assigns them itself with Kafka's RangeAssignor and a new
 * generation on every join and leave. A group has members of one kind at a
 * time: a Kafka client cannot join a group of direct members, nor the other way.
 * Committed offsets are not kept here but in the streams store.
 */
import { randomUUID } from 'node:crypto';
import { BrokerError } from './errors.js';
import type { GroupMemberInfo, TopicPartitionRef } from './types.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

export type GroupErrorCode = 'UNKNOWN_MEMBER_ID' | 'ILLEGAL_GENERATION' | 'REBALANCE_IN_PROGRESS' | 'INCONSISTENT_GROUP_PROTOCOL' | 'INVALID_SESSION_TIMEOUT';

export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinGroupRequest {
  groupId: string;
  /** '' for a member joining for the first time: the coordinator names it. */
  memberId: string;
  clientId: string;
  protocolType: string;
  /** In the member's order of preference. */
  protocols: GroupProtocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
}

export interface JoinGroupResponse {
  error: GroupErrorCode | null;
  generation: number;
  protocol: string | null;
  leader: string;
  memberId: string;
  /** The leader's answer lists every member with its metadata for the chosen protocol; the others' is empty. */
  members: Array<{ memberId: string; metadata: Buffer }>;
}

export interface SyncGroupRequest {
  groupId: string;
  generation: number;
  memberId: string;
  /** The leader's assignment for every member; empty from the others. */
  assignments: Array<{ memberId: string; assignment: Buffer }>;
}

export interface SyncGroupResponse {
  error: GroupErrorCode | null;
  assignment: Buffer;
}

export interface GroupDescription {
  groupId: string;
  state: GroupState;
  generation: number;
  protocolType: string | null;
  protocol: string | null;
  leader: string | null;
  members: Array<{ memberId: string; clientId: string; assignment: Buffer; metadata: Buffer }>;
}

interface Member {
  id: string;
  clientId: string;
  protocols: GroupProtocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** Removed when now passes this without a heartbeat, join or sync. */
  expiresAt: number;
  assignment: Buffer;
  /** A JoinGroup waiting for the rebalance to complete. */
  joining: ((r: JoinGroupResponse) => void) | null;
  /** A SyncGroup waiting for the leader's assignment. */
  syncing: ((r: SyncGroupResponse) => void) | null;
}

interface Group {
  id: string;
  state: GroupState;
  generation: number;
  protocolType: string | null;
  protocol: string | null;
  leader: string | null;
  /** In the order they joined: the first is the leader unless it left. */
  members: Map<string, Member>;
  /** PreparingRebalance: completes at the latest at this time. */
  rebalanceDeadline: number;
  /** Members assigned by the broker itself, by id: their subscriptions and assignments. */
  direct: Map<string, { topics: string[]; assignments: TopicPartitionRef[] }>;
}

const EMPTY = Buffer.alloc(0);

/** Kafka's broker defaults for group.min.session.timeout.ms and group.max.session.timeout.ms. */
export const MIN_SESSION_TIMEOUT_MS = 6_000;
export const MAX_SESSION_TIMEOUT_MS = 1_800_000;

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly now: () => number = Date.now) {}

  joinGroup(req: JoinGroupRequest): Promise<JoinGroupResponse> {
    const fail = (error: GroupErrorCode): Promise<JoinGroupResponse> =>
      Promise.resolve({ error, generation: -1, protocol: null, leader: '', memberId: req.memberId, members: [] });
    if (req.sessionTimeoutMs < MIN_SESSION_TIMEOUT_MS || req.sessionTimeoutMs > MAX_SESSION_TIMEOUT_MS) return fail('INVALID_SESSION_TIMEOUT');
    const g = this.group(req.groupId);
    if (g.direct.size > 0) return fail('INCONSISTENT_GROUP_PROTOCOL');
    if (req.protocols.length === 0 || (g.protocolType !== null && g.members.size > 0 && g.protocolType !== req.protocolType)) return fail('INCONSISTENT_GROUP_PROTOCOL');
    if (g.members.size > 0 && !this.candidates(g, req.protocols).length) return fail('INCONSISTENT_GROUP_PROTOCOL');
    let m = req.memberId === '' ? undefined : g.members.get(req.memberId);
    if (req.memberId !== '' && !m) return fail('UNKNOWN_MEMBER_ID');
    const now = this.now();
    if (!m) {
      m = { id: `${req.clientId}-${randomUUID()}`, clientId: req.clientId, protocols: req.protocols, sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: req.rebalanceTimeoutMs, expiresAt: 0, assignment: EMPTY, joining: null, syncing: null };
      g.members.set(m.id, m);
      g.protocolType = req.protocolType;
    } else if ((g.state === 'Stable' || g.state === 'CompletingRebalance') && sameProtocols(m.protocols, req.protocols)) {
      // A member that already has this generation asks again: the same answer, no rebalance.
      m.expiresAt = now + m.sessionTimeoutMs;
      return Promise.resolve(this.joinResponse(g, m));
    }
    m.protocols = req.protocols;
    m.sessionTimeoutMs = req.sessionTimeoutMs;
    m.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    m.expiresAt = now + m.sessionTimeoutMs;
    const member = m;
    const answer = new Promise<JoinGroupResponse>((resolve) => (member.joining = resolve));
    if (g.state !== 'PreparingRebalance') this.prepareRebalance(g);
    this.maybeCompleteJoin(g);
    return answer;
  }

  syncGroup(req: SyncGroupRequest): Promise<SyncGroupResponse> {
    const fail = (error: GroupErrorCode) => Promise.resolve({ error, assignment: EMPTY });
    const g = this.groups.get(req.groupId);
    const m = g?.members.get(req.memberId);
    if (!g || !m) return fail('UNKNOWN_MEMBER_ID');
    if (req.generation !== g.generation) return fail('ILLEGAL_GENERATION');
    m.expiresAt = this.now() + m.sessionTimeoutMs;
    if (g.state === 'PreparingRebalance') return fail('REBALANCE_IN_PROGRESS');
    if (g.state === 'Stable') return Promise.resolve({ error: null, assignment: m.assignment });
    // CompletingRebalance: the leader brings everyone's assignment; the others wait for it.
    const answer = new Promise<SyncGroupResponse>((resolve) => (m.syncing = resolve));
    if (m.id === g.leader) {
      const given = new Map(req.assignments.map((a) => [a.memberId, a.assignment]));
      g.state = 'Stable';
      for (const x of g.members.values()) {
        x.assignment = given.get(x.id) ?? EMPTY;
        const reply = x.syncing;
        x.syncing = null;
        reply?.({ error: null, assignment: x.assignment });
      }
    }
    return answer;
  }

  heartbeat(groupId: string, generation: number, memberId: string): GroupErrorCode | null {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return 'UNKNOWN_MEMBER_ID';
    if (generation !== g.generation) return 'ILLEGAL_GENERATION';
    m.expiresAt = this.now() + m.sessionTimeoutMs;
    // Members learn of a rebalance here, and rejoin.
    if (g.state === 'PreparingRebalance') return 'REBALANCE_IN_PROGRESS';
    return null;
  }

  leaveGroup(groupId: string, memberId: string): GroupErrorCode | null {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return 'UNKNOWN_MEMBER_ID';
    this.remove(g, m);
    return null;
  }

  /**
   * Whether a member of this generation may commit offsets (Kafka's OffsetCommit
   * with a generation), without counting as a heartbeat.
   */
  checkMember(groupId: string, generation: number, memberId: string): GroupErrorCode | null {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) return 'UNKNOWN_MEMBER_ID';
    if (generation !== g.generation) return 'ILLEGAL_GENERATION';
    // Kafka lets members commit while a rebalance gathers them (so they can commit before rejoining),
    // but not between the new generation and its assignment.
    if (g.state === 'CompletingRebalance') return 'REBALANCE_IN_PROGRESS';
    return null;
  }

  /** Removes members whose session timed out and completes rebalances whose timeout passed. */
  tick(): void {
    const now = this.now();
    for (const g of this.groups.values()) {
      for (const m of [...g.members.values()]) {
        // A member waiting in a join is kept until the rebalance ends (its deadline decides).
        if (m.joining === null && now > m.expiresAt) this.remove(g, m);
      }
      if (g.state === 'PreparingRebalance' && now >= g.rebalanceDeadline) {
        for (const m of [...g.members.values()]) if (m.joining === null) g.members.delete(m.id);
        this.completeJoin(g);
      }
    }
  }

  /** Groups that have members of either kind. */
  ids(): string[] {
    return [...this.groups.values()].filter((g) => g.members.size > 0 || g.direct.size > 0).map((g) => g.id);
  }

  /** Every group the coordinator knows, members or not (until forgotten). */
  known(): string[] {
    // A join refused at once (a bad session timeout, an unknown member) leaves no group behind.
    return [...this.groups.values()].filter((g) => g.generation > 0).map((g) => g.id);
  }

  /** Drops a group that has no members (its offsets were deleted). */
  forget(groupId: string): void {
    const g = this.groups.get(groupId);
    if (g && g.members.size === 0 && g.direct.size === 0) this.groups.delete(groupId);
  }

  // ---- direct members (the app's own consumers) ----------------------------------

  /**
   * Adds (or re-subscribes) a direct member and rebalances the group's direct
   * members with the RangeAssignor; `partitionsOf` tells a topic's partition
   * count (undefined: no such topic, not assigned).
   */
  joinDirect(groupId: string, memberId: string, topics: string[], partitionsOf: (topic: string) => number | undefined): { generation: number; assignments: TopicPartitionRef[]; members: GroupMemberInfo[] } {
    const g = this.group(groupId);
    if (g.members.size > 0) throw new BrokerError('CONFLICT', `consumer group ${JSON.stringify(groupId)} has Kafka clients as members; its members are assigned by them`, 'groupId');
    g.direct.set(memberId, { topics: [...new Set(topics)], assignments: [] });
    this.assignDirect(g, partitionsOf);
    return { generation: g.generation, assignments: g.direct.get(memberId)!.assignments, members: this.directMembers(groupId) };
  }

  leaveDirect(groupId: string, memberId: string, partitionsOf: (topic: string) => number | undefined): { generation: number; members: GroupMemberInfo[] } {
    const g = this.groups.get(groupId);
    if (!g || !g.direct.has(memberId)) throw new BrokerError('NOT_FOUND', `member ${JSON.stringify(memberId)} is not in group ${JSON.stringify(groupId)}`, 'memberId');
    g.direct.delete(memberId);
    this.assignDirect(g, partitionsOf);
    return { generation: g.generation, members: this.directMembers(groupId) };
  }

  /** A deleted topic is no longer assigned to anyone. */
  dropTopic(topic: string): void {
    for (const g of this.groups.values()) for (const m of g.direct.values()) m.assignments = m.assignments.filter((a) => a.topic !== topic);
  }

  /** The direct members, by id, with copies of their assignments. */
  directMembers(groupId: string): GroupMemberInfo[] {
    const g = this.groups.get(groupId);
    if (!g) return [];
    return [...g.direct].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([memberId, m]) => ({ memberId, assignments: m.assignments.map((x) => ({ ...x })) }));
  }

  /** Kafka's RangeAssignor: per topic, members sorted by id take consecutive ranges, the first ones one extra. */
  private assignDirect(g: Group, partitionsOf: (topic: string) => number | undefined): void {
    g.generation++;
    g.state = g.direct.size > 0 ? 'Stable' : 'Empty';
    for (const m of g.direct.values()) m.assignments = [];
    const byTopic = new Map<string, string[]>();
    for (const [id, m] of g.direct) for (const topic of m.topics) byTopic.set(topic, [...(byTopic.get(topic) ?? []), id]);
    for (const [topic, ids] of [...byTopic].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const n = partitionsOf(topic);
      if (n === undefined) continue;
      ids.sort();
      const per = Math.floor(n / ids.length);
      const extra = n % ids.length;
      ids.forEach((id, i) => {
        const start = per * i + Math.min(i, extra);
        const len = per + (i < extra ? 1 : 0);
        const m = g.direct.get(id)!;
        for (let p = start; p < start + len; p++) m.assignments.push({ topic, partition: p });
      });
    }
  }

  describe(groupId: string): GroupDescription | null {
    const g = this.groups.get(groupId);
    if (!g) return null;
    return {
      groupId,
      state: g.state,
      generation: g.generation,
      protocolType: g.protocolType,
      protocol: g.protocol,
      leader: g.leader,
      members: [...g.members.values()].map((m) => ({ memberId: m.id, clientId: m.clientId, assignment: m.assignment, metadata: m.protocols.find((p) => p.name === g.protocol)?.metadata ?? EMPTY })),
    };
  }

  private group(id: string): Group {
    let g = this.groups.get(id);
    if (!g) {
      g = { id, state: 'Empty', generation: 0, protocolType: null, protocol: null, leader: null, members: new Map(), rebalanceDeadline: 0, direct: new Map() };
      this.groups.set(id, g);
    }
    return g;
  }

  private remove(g: Group, m: Member): void {
    g.members.delete(m.id);
    m.joining?.({ error: 'UNKNOWN_MEMBER_ID', generation: -1, protocol: null, leader: '', memberId: m.id, members: [] });
    m.joining = null;
    m.syncing?.({ error: 'REBALANCE_IN_PROGRESS', assignment: EMPTY });
    m.syncing = null;
    if (g.leader === m.id) g.leader = null;
    if (g.state === 'PreparingRebalance') this.maybeCompleteJoin(g);
    else this.prepareRebalance(g);
  }

  /** Starts a rebalance: members still waiting for an assignment are told to rejoin. */
  private prepareRebalance(g: Group): void {
    for (const m of g.members.values()) {
      const reply = m.syncing;
      m.syncing = null;
      reply?.({ error: 'REBALANCE_IN_PROGRESS', assignment: EMPTY });
    }
    if (g.members.size === 0) {
      this.toEmpty(g);
      return;
    }
    g.state = 'PreparingRebalance';
    g.rebalanceDeadline = this.now() + Math.max(...[...g.members.values()].map((m) => m.rebalanceTimeoutMs));
  }

  private maybeCompleteJoin(g: Group): void {
    if (g.state !== 'PreparingRebalance') return;
    if (g.members.size === 0) this.toEmpty(g);
    else if ([...g.members.values()].every((m) => m.joining !== null)) this.completeJoin(g);
  }

  private toEmpty(g: Group): void {
    g.state = 'Empty';
    g.generation++;
    g.protocol = null;
    g.leader = null;
  }

  /** A new generation: a protocol every member supports, a leader, and each waiting join answered. */
  private completeJoin(g: Group): void {
    if (g.members.size === 0) {
      this.toEmpty(g);
      return;
    }
    g.generation++;
    g.protocol = this.chooseProtocol(g);
    if (g.leader === null || !g.members.has(g.leader)) g.leader = g.members.keys().next().value!;
    g.state = 'CompletingRebalance';
    const now = this.now();
    for (const m of g.members.values()) {
      m.assignment = EMPTY;
      m.expiresAt = now + m.sessionTimeoutMs;
      const reply = m.joining;
      m.joining = null;
      reply?.(this.joinResponse(g, m));
    }
  }

  private joinResponse(g: Group, m: Member): JoinGroupResponse {
    const isLeader = m.id === g.leader;
    return {
      error: null,
      generation: g.generation,
      protocol: g.protocol,
      leader: g.leader ?? '',
      memberId: m.id,
      members: isLeader ? [...g.members.values()].map((x) => ({ memberId: x.id, metadata: x.protocols.find((p) => p.name === g.protocol)?.metadata ?? EMPTY })) : [],
    };
  }

  /** Protocols every member (and the newcomer's list) supports. */
  private candidates(g: Group, extra: GroupProtocol[]): string[] {
    let names = extra.map((p) => p.name);
    for (const m of g.members.values()) names = names.filter((n) => m.protocols.some((p) => p.name === n));
    return names;
  }

  /** Kafka's vote: each member votes for its most preferred protocol that all support; the most votes win, ties to the first candidate. */
  private chooseProtocol(g: Group): string {
    const members = [...g.members.values()];
    const all = this.candidates(g, members[0]!.protocols);
    const votes = new Map<string, number>();
    for (const m of members) {
      const choice = m.protocols.find((p) => all.includes(p.name))!.name;
      votes.set(choice, (votes.get(choice) ?? 0) + 1);
    }
    return all.reduce((best, n) => ((votes.get(n) ?? 0) > (votes.get(best) ?? 0) ? n : best), all[0]!);
  }
}

/**
 * The partitions in a member's assignment when the group speaks Kafka's
 * "consumer" protocol (ConsumerProtocolAssignment, every version: int16
 * version, then [topic string, [int32 partition]], then user data), so that
 * the app shows who consumes what; anything else, or bytes that do not parse,
 * give none. Only read for display: the coordinator never acts on it.
 */
export function consumerAssignment(bytes: Buffer): TopicPartitionRef[] {
  const out: TopicPartitionRef[] = [];
  try {
    let at = 2;
    const topics = bytes.readInt32BE(at);
    at += 4;
    if (topics < 0 || topics > bytes.length) return [];
    for (let t = 0; t < topics; t++) {
      const n = bytes.readInt16BE(at);
      at += 2;
      if (n < 0 || at + n > bytes.length) return [];
      const topic = bytes.toString('utf8', at, at + n);
      at += n;
      const count = bytes.readInt32BE(at);
      at += 4;
      if (count < 0 || at + count * 4 > bytes.length) return [];
      for (let i = 0; i < count; i++, at += 4) out.push({ topic, partition: bytes.readInt32BE(at) });
    }
    return out;
  } catch {
    return [];
  }
}

function sameProtocols(a: GroupProtocol[], b: GroupProtocol[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata));
}
