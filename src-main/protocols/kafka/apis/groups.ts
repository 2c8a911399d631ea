/**
 * Consumer groups over the wire: FindCoordinator (this broker coordinates
 * every group), the classic group protocol through the broker's group
 * coordinator (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed
 * offsets through the streams store (OffsetCommit, OffsetFetch), and
 * DescribeGroups, ListGroups, DeleteGroups and OffsetDelete. Groups formed here are the
 * groups Brokerdeck shows, with their lag.
 */
import { BrokerError } from '../../../broker/errors.js';
import type { GroupErrorCode } from '../../../broker/group-coordinator.js';
import type { GroupInfo } from '../../../broker/types.js';
import { ERR } from '../errors.js';
import type { DeleteGroupsRequest } from '../generated/DeleteGroupsRequest.js';
import type { DescribeGroupsRequest } from '../generated/DescribeGroupsRequest.js';
import type { FindCoordinatorRequest } from '../generated/FindCoordinatorRequest.js';
import type { HeartbeatRequest } from '../generated/HeartbeatRequest.js';
import type { JoinGroupRequest } from '../generated/JoinGroupRequest.js';
import type { LeaveGroupRequest } from '../generated/LeaveGroupRequest.js';
import type { ListGroupsRequest } from '../generated/ListGroupsRequest.js';
import type { OffsetCommitRequest } from '../generated/OffsetCommitRequest.js';
import type { OffsetDeleteRequest } from '../generated/OffsetDeleteRequest.js';
import type { OffsetFetchRequest } from '../generated/OffsetFetchRequest.js';
import { readConsumerProtocolSubscription } from '../generated/ConsumerProtocolSubscription.js';
import { Reader } from '../codec/primitives.js';
import type { SyncGroupRequest } from '../generated/SyncGroupRequest.js';
import { NODE_ID, type ApiTable, type RequestContext } from '../context.js';

const code = (e: GroupErrorCode | null): number => (e === null ? 0 : ERR[e]);

function findCoordinator(ctx: RequestContext, req: FindCoordinatorRequest) {
  const { host, port } = ctx.connection.localAddress;
  const keys = ctx.version >= 4 ? req.coordinatorKeys : [req.key];
  // This broker coordinates every group (key type 0) and transactional id (key type 1).
  const keyType = ctx.version >= 1 ? req.keyType : 0;
  const one = (key: string) => (keyType === 0 || keyType === 1 ? { key, nodeId: NODE_ID, host, port, errorCode: 0, errorMessage: null } : { key, nodeId: -1, host: '', port: -1, errorCode: ERR.INVALID_REQUEST, errorMessage: `unknown coordinator key type ${keyType}` });
  const answers = keys.map(one);
  const first = answers[0] ?? one('');
  return { throttleTimeMs: 0, errorCode: first.errorCode, errorMessage: first.errorMessage, nodeId: first.nodeId, host: first.host, port: first.port, coordinators: answers };
}

async function joinGroup(ctx: RequestContext, req: JoinGroupRequest) {
  if (!req.groupId) return { errorCode: ERR.INVALID_GROUP_ID, generationId: -1, memberId: req.memberId, leader: '', members: [] };
  const res = await ctx.server.engine().groupCoordinator.joinGroup({
    groupId: req.groupId,
    memberId: req.memberId,
    clientId: ctx.header.clientId ?? '',
    protocolType: req.protocolType,
    protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
    sessionTimeoutMs: req.sessionTimeoutMs,
    rebalanceTimeoutMs: ctx.version >= 1 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs,
  });
  return {
    throttleTimeMs: 0,
    errorCode: code(res.error),
    generationId: res.generation,
    protocolType: res.error ? null : req.protocolType,
    protocolName: res.protocol,
    leader: res.leader,
    skipAssignment: false,
    memberId: res.memberId,
    members: res.members.map((m) => ({ memberId: m.memberId, groupInstanceId: null, metadata: m.metadata })),
  };
}

async function syncGroup(ctx: RequestContext, req: SyncGroupRequest) {
  const coordinator = ctx.server.engine().groupCoordinator;
  const res = await coordinator.syncGroup({ groupId: req.groupId, generation: req.generationId, memberId: req.memberId, assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })) });
  const d = coordinator.describe(req.groupId);
  return { throttleTimeMs: 0, errorCode: code(res.error), protocolType: d?.protocolType ?? null, protocolName: d?.protocol ?? null, assignment: res.assignment };
}

function heartbeat(ctx: RequestContext, req: HeartbeatRequest) {
  return { throttleTimeMs: 0, errorCode: code(ctx.server.engine().groupCoordinator.heartbeat(req.groupId, req.generationId, req.memberId)) };
}

function leaveGroup(ctx: RequestContext, req: LeaveGroupRequest) {
  const coordinator = ctx.server.engine().groupCoordinator;
  if (ctx.version < 3) return { throttleTimeMs: 0, errorCode: code(coordinator.leaveGroup(req.groupId, req.memberId)) };
  const members = req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: code(coordinator.leaveGroup(req.groupId, m.memberId)) }));
  return { throttleTimeMs: 0, errorCode: 0, members };
}

async function offsetCommit(ctx: RequestContext, req: OffsetCommitRequest) {
  const engine = ctx.server.engine();
  const topics = new Map(engine.listTopics().map((t) => [t.name, t]));
  const answer = (errorCode: (topic: string, partition: number) => number) => ({
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errorCode(t.name, p.partitionIndex) })) })),
  });
  // A commit with a generation comes from a member, and must be of its current generation.
  if (ctx.version >= 1 && req.generationIdOrMemberEpoch >= 0) {
    const problem = code(engine.groupCoordinator.checkMember(req.groupId, req.generationIdOrMemberEpoch, req.memberId));
    if (problem) return answer(() => problem);
  }
  const valid: Array<{ topic: string; partition: number; offset: number }> = [];
  const bad = new Set<string>();
  for (const t of req.topics) {
    for (const p of t.partitions) {
      const known = topics.get(t.name)?.partitions[p.partitionIndex];
      if (!known || p.committedOffset < 0n) bad.add(`${t.name}\0${p.partitionIndex}`);
      else valid.push({ topic: t.name, partition: p.partitionIndex, offset: Number(p.committedOffset) });
    }
  }
  let failure = 0;
  if (valid.length > 0) {
    try {
      await engine.commitOffsets(req.groupId, valid);
    } catch (error) {
      failure = error instanceof BrokerError && error.code === 'UNAVAILABLE' ? ERR.KAFKA_STORAGE_ERROR : ERR.UNKNOWN_SERVER_ERROR;
    }
  }
  return answer((topic, partition) => (bad.has(`${topic}\0${partition}`) ? ERR.UNKNOWN_TOPIC_OR_PARTITION : failure));
}

function groupOf(ctx: RequestContext, groupId: string): GroupInfo | undefined {
  return ctx.server.engine().findGroup(groupId);
}

function committedFor(ctx: RequestContext, groupId: string, wanted: Array<{ name: string; partitionIndexes: number[] }> | null, requireStable = false) {
  const info = groupOf(ctx, groupId);
  // requireStable (v7+): offsets held in an open transaction make the partition UNSTABLE_OFFSET_COMMIT until it ends (the client asks again).
  const pending = requireStable ? ctx.server.engine().transactions.pendingOffsets(groupId) : null;
  const committed = new Map((info?.partitions ?? []).filter((p) => p.committed !== null).map((p) => [`${p.topic}\0${p.partition}`, p.committed!]));
  const list = wanted ?? [...new Set((info?.partitions ?? []).filter((p) => p.committed !== null).map((p) => p.topic))].map((name) => ({ name, partitionIndexes: info!.partitions.filter((p) => p.topic === name && p.committed !== null).map((p) => p.partition) }));
  return list.map((t) => ({
    name: t.name,
    partitions: t.partitionIndexes.map((partitionIndex) => {
      if (pending?.has(`${partitionIndex}\0${t.name}`)) return { partitionIndex, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: ERR.UNSTABLE_OFFSET_COMMIT };
      const c = committed.get(`${t.name}\0${partitionIndex}`);
      return { partitionIndex, committedOffset: BigInt(c ?? -1), committedLeaderEpoch: -1, metadata: '', errorCode: 0 };
    }),
  }));
}

function offsetFetch(ctx: RequestContext, req: OffsetFetchRequest) {
  const stable = ctx.version >= 7 && req.requireStable;
  if (ctx.version >= 8) return { throttleTimeMs: 0, groups: req.groups.map((g) => ({ groupId: g.groupId, topics: committedFor(ctx, g.groupId, g.topics, stable), errorCode: 0 })) };
  return { throttleTimeMs: 0, topics: committedFor(ctx, req.groupId, req.topics, stable), errorCode: 0 };
}

function describeGroups(ctx: RequestContext, req: DescribeGroupsRequest) {
  const coordinator = ctx.server.engine().groupCoordinator;
  return {
    throttleTimeMs: 0,
    groups: req.groups.map((groupId) => {
      const d = coordinator.describe(groupId);
      const client = ctx.connection.info.remoteAddress;
      if (d && d.members.length > 0) {
        return {
          errorCode: 0,
          groupId,
          groupState: d.state,
          protocolType: d.protocolType ?? '',
          protocolData: d.state === 'Stable' ? (d.protocol ?? '') : '',
          members: d.members.map((m) => ({ memberId: m.memberId, groupInstanceId: null, clientId: m.clientId, clientHost: `/${client}`, memberMetadata: m.metadata, memberAssignment: m.assignment })),
          authorizedOperations: -2147483648,
        };
      }
      const known = groupOf(ctx, groupId);
      return { errorCode: 0, groupId, groupState: known ? 'Empty' : 'Dead', protocolType: known ? 'consumer' : '', protocolData: '', members: [], authorizedOperations: -2147483648 };
    }),
  };
}

function listGroups(ctx: RequestContext, req: ListGroupsRequest) {
  const engine = ctx.server.engine();
  const coordinator = engine.groupCoordinator;
  const states = ctx.version >= 4 ? req.statesFilter.map((s) => s.toLowerCase()) : [];
  const groups = engine
    .listGroups()
    .map((g) => {
      const d = coordinator.describe(g.groupId);
      const state = d && d.members.length > 0 ? d.state : 'Empty';
      return { groupId: g.groupId, protocolType: d?.protocolType ?? 'consumer', groupState: state, groupType: 'classic' };
    })
    .filter((g) => states.length === 0 || states.includes(g.groupState.toLowerCase()));
  return { throttleTimeMs: 0, errorCode: 0, groups };
}

async function deleteGroups(ctx: RequestContext, req: DeleteGroupsRequest) {
  const engine = ctx.server.engine();
  const results = [];
  for (const groupId of req.groupsNames) {
    let errorCode = 0;
    try {
      await engine.deleteGroup(groupId);
    } catch (error) {
      const c = error instanceof BrokerError ? error.code : '';
      errorCode = c === 'NOT_FOUND' ? ERR.GROUP_ID_NOT_FOUND : c === 'PRECONDITION_FAILED' ? ERR.NON_EMPTY_GROUP : c === 'INVALID_ARGUMENT' ? ERR.INVALID_GROUP_ID : ERR.UNKNOWN_SERVER_ERROR;
    }
    results.push({ groupId, errorCode });
  }
  return { throttleTimeMs: 0, results };
}

/** The topics a consumer group's members subscribe to (their JoinGroup subscriptions, and the app's own members' topics). */
function subscribedTopics(ctx: RequestContext, groupId: string): Set<string> {
  const coordinator = ctx.server.engine().groupCoordinator;
  const topics = new Set<string>();
  const d = coordinator.describe(groupId);
  for (const m of d?.members ?? []) {
    try {
      const r = new Reader(m.metadata);
      const version = r.int16();
      for (const t of readConsumerProtocolSubscription(r, Math.min(Math.max(version, 0), 3)).topics) topics.add(t);
    } catch {
      // Metadata that is not a consumer subscription subscribes to nothing it could name.
    }
  }
  for (const m of coordinator.directMembers(groupId)) for (const a of m.assignments) topics.add(a.topic);
  return topics;
}

/**
 * OffsetDelete as Kafka's group coordinator answers it: a group unknown is
 * GROUP_ID_NOT_FOUND; an empty group loses the offsets asked; a consumer
 * group with members keeps those of topics it subscribes to
 * (GROUP_SUBSCRIBED_TO_TOPIC) and loses the others; a non-consumer group
 * with members is NON_EMPTY_GROUP.
 */
async function offsetDelete(ctx: RequestContext, req: OffsetDeleteRequest) {
  const engine = ctx.server.engine();
  const whole = (errorCode: number) => ({ throttleTimeMs: 0, errorCode, topics: [] });
  if (!req.groupId) return whole(ERR.INVALID_GROUP_ID);
  const d = engine.groupCoordinator.describe(req.groupId);
  const direct = engine.groupCoordinator.directMembers(req.groupId);
  const active = (d?.members.length ?? 0) + direct.length > 0;
  if (!groupOf(ctx, req.groupId)) return whole(ERR.GROUP_ID_NOT_FOUND);
  if (active && d && d.members.length > 0 && d.protocolType !== 'consumer') return whole(ERR.NON_EMPTY_GROUP);
  const subscribed = active ? subscribedTopics(ctx, req.groupId) : new Set<string>();
  const topics = new Map(engine.listTopics().map((t) => [t.name, t]));
  const doomed: Array<{ topic: string; partition: number }> = [];
  const answer = req.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => {
      let errorCode: number = ERR.NONE;
      if (!topics.get(t.name)?.partitions[p.partitionIndex]) errorCode = ERR.UNKNOWN_TOPIC_OR_PARTITION;
      else if (subscribed.has(t.name)) errorCode = ERR.GROUP_SUBSCRIBED_TO_TOPIC;
      else doomed.push({ topic: t.name, partition: p.partitionIndex });
      return { partitionIndex: p.partitionIndex, errorCode };
    }),
  }));
  if (doomed.length > 0) {
    try {
      await engine.deleteGroupPartitionOffsets(req.groupId, doomed);
    } catch (error) {
      return whole(error instanceof BrokerError && error.code === 'UNAVAILABLE' ? ERR.KAFKA_STORAGE_ERROR : ERR.UNKNOWN_SERVER_ERROR);
    }
  }
  return { throttleTimeMs: 0, errorCode: 0, topics: answer };
}

export const groupApis: ApiTable = {
  10: { min: 0, max: 6, handle: findCoordinator },
  11: { min: 0, max: 9, handle: joinGroup },
  14: { min: 0, max: 5, handle: syncGroup },
  12: { min: 0, max: 4, handle: heartbeat },
  13: { min: 0, max: 5, handle: leaveGroup },
  8: { min: 0, max: 9, handle: offsetCommit },
  9: { min: 0, max: 9, handle: offsetFetch },
  15: { min: 0, max: 5, handle: describeGroups },
  16: { min: 0, max: 5, handle: listGroups },
  42: { min: 0, max: 2, handle: deleteGroups },
  47: { min: 0, max: 0, handle: offsetDelete },
};
