/**
 * SaslHandshake and SaslAuthenticate, as Kafka's SaslServerAuthenticator
 * answers them on a SASL listener: the handshake names a mechanism (an
 * unknown one is UNSUPPORTED_SASL_MECHANISM, with the list, and the
 * connection closes), then tokens go back and forth in SaslAuthenticate
 * until the client is authenticated; a failure is SASL_AUTHENTICATION_FAILED
 * and the connection closes. Without users the listener is plaintext and
 * both are ILLEGAL_SASL_STATE, as on Kafka's PLAINTEXT listener.
 *
 * DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554) manage
 * the users as kafka-configs --entity-type users does: the client salts the
 * password, the broker keeps the derived keys. As on Kafka without an
 * authorizer, any client that may connect may change them; the first user
 * turns authentication on for the connections that follow.
 */
import { ERR } from '../errors.js';
import type { SaslAuthenticateRequest } from '../generated/SaslAuthenticateRequest.js';
import type { SaslHandshakeRequest } from '../generated/SaslHandshakeRequest.js';
import type { AlterUserScramCredentialsRequest } from '../generated/AlterUserScramCredentialsRequest.js';
import type { DescribeUserScramCredentialsRequest } from '../generated/DescribeUserScramCredentialsRequest.js';
import { SASL_MECHANISMS, SaslFailure, startExchange, type SaslMechanism } from '../sasl.js';
import { credentialFrom, MAX_ITERATIONS, MIN_ITERATIONS, SCRAM_MECHANISMS, SCRAM_TYPE, type ScramMechanism } from '../users.js';
import type { ApiTable, ConnectionView, RequestContext, ServerState } from '../context.js';

function saslHandshake(ctx: RequestContext, req: SaslHandshakeRequest) {
  const sasl = ctx.connection.sasl;
  if (sasl.stage !== 'handshake') return { errorCode: ERR.ILLEGAL_SASL_STATE, mechanisms: [] };
  if (!(SASL_MECHANISMS as readonly string[]).includes(req.mechanism)) {
    ctx.server.logger.warn('kafka client asked for a SASL mechanism this listener does not offer', { remote: ctx.connection.info.remote, mechanism: req.mechanism.slice(0, 64) });
    ctx.connection.closeAfterResponse();
    return { errorCode: ERR.UNSUPPORTED_SASL_MECHANISM, mechanisms: [...SASL_MECHANISMS] };
  }
  sasl.mechanism = req.mechanism as SaslMechanism;
  sasl.exchange = startExchange(sasl.mechanism, ctx.server.users);
  sasl.stage = 'authenticate';
  // v0: the tokens follow as bare frames, not SaslAuthenticate requests.
  sasl.rawTokens = ctx.version === 0;
  return { errorCode: 0, mechanisms: [...SASL_MECHANISMS] };
}

/** One token of the exchange; resolves the reply, or null when authentication failed (the connection is to close). */
export function saslStep(server: ServerState, connection: ConnectionView, token: Buffer): { reply: Buffer } | { failure: string } {
  const sasl = connection.sasl;
  try {
    const r = sasl.exchange!.step(token);
    if (r.done) {
      sasl.stage = 'done';
      sasl.rawTokens = false;
      sasl.exchange = null;
      sasl.principal = r.principal ?? null;
      server.logger.info('kafka client authenticated', { remote: connection.info.remote, mechanism: sasl.mechanism, user: sasl.principal });
    }
    return { reply: r.reply };
  } catch (error) {
    if (!(error instanceof SaslFailure)) throw error;
    server.logger.warn('kafka SASL authentication failed', { remote: connection.info.remote, mechanism: sasl.mechanism, error: error.message });
    const failure = error.shown ? error.message : `Authentication failed during authentication due to invalid credentials with SASL mechanism ${sasl.mechanism}`;
    return { failure };
  }
}

function saslAuthenticate(ctx: RequestContext, req: SaslAuthenticateRequest) {
  const sasl = ctx.connection.sasl;
  if (sasl.stage !== 'authenticate' || !sasl.exchange || sasl.rawTokens) return { errorCode: ERR.ILLEGAL_SASL_STATE, errorMessage: 'Unexpected SaslAuthenticate request', authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n };
  const r = saslStep(ctx.server, ctx.connection, req.authBytes);
  if ('failure' in r) {
    ctx.connection.closeAfterResponse();
    return { errorCode: ERR.SASL_AUTHENTICATION_FAILED, errorMessage: r.failure, authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n };
  }
  // 0: no re-authentication asked (KIP-368), as Kafka with connections.max.reauth.ms unset.
  return { errorCode: 0, errorMessage: null, authBytes: r.reply, sessionLifetimeMs: 0n };
}

const mechanismOf = (type: number): ScramMechanism | undefined => SCRAM_MECHANISMS.find((m) => SCRAM_TYPE[m] === type);

function describeUserScramCredentials(ctx: RequestContext, req: DescribeUserScramCredentialsRequest) {
  const users = ctx.server.users;
  const asked = req.users === null || req.users.length === 0 ? null : req.users.map((u) => u.name);
  const counts = new Map<string, number>();
  for (const name of asked ?? []) counts.set(name, (counts.get(name) ?? 0) + 1);
  const results = (asked ?? users.names()).filter((name, i, all) => all.indexOf(name) === i).map((user) => {
    if ((counts.get(user) ?? 0) > 1) return { user, errorCode: ERR.DUPLICATE_RESOURCE, errorMessage: `Cannot describe SCRAM credentials for the same user twice in a single request: ${user}`, credentialInfos: [] };
    const u = users.get(user);
    if (!u) return { user, errorCode: ERR.RESOURCE_NOT_FOUND, errorMessage: `Attempt to describe a user credential that does not exist: ${user}`, credentialInfos: [] };
    const credentialInfos = SCRAM_MECHANISMS.filter((m) => u.credentials[m]).map((m) => ({ mechanism: SCRAM_TYPE[m], iterations: u.credentials[m]!.iterations }));
    return { user, errorCode: 0, errorMessage: null, credentialInfos };
  });
  return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, results };
}

/** Each user's changes are checked together and applied together, or not at all (Kafka's per-user answer). */
function alterUserScramCredentials(ctx: RequestContext, req: AlterUserScramCredentialsRequest) {
  const users = ctx.server.users;
  const byUser = new Map<string, { deletions: typeof req.deletions; upsertions: typeof req.upsertions }>();
  const of = (name: string) => byUser.get(name) ?? byUser.set(name, { deletions: [], upsertions: [] }).get(name)!;
  for (const d of req.deletions) of(d.name).deletions.push(d);
  for (const u of req.upsertions) of(u.name).upsertions.push(u);
  const results = [...byUser.entries()].map(([user, { deletions, upsertions }]) => {
    const fail = (errorCode: number, errorMessage: string) => ({ user, errorCode, errorMessage });
    if (user === '') return fail(ERR.UNACCEPTABLE_CREDENTIAL, 'Username must not be empty');
    const touched = [...deletions, ...upsertions].map((c) => c.mechanism);
    if (touched.some((m) => !mechanismOf(m))) return fail(ERR.UNSUPPORTED_SASL_MECHANISM, 'Unknown SCRAM mechanism');
    if (new Set(touched).size !== touched.length) return fail(ERR.DUPLICATE_RESOURCE, 'A user credential cannot be altered twice in the same request');
    for (const u of upsertions) {
      if (u.iterations < MIN_ITERATIONS) return fail(ERR.UNACCEPTABLE_CREDENTIAL, 'Too few iterations');
      if (u.iterations > MAX_ITERATIONS) return fail(ERR.UNACCEPTABLE_CREDENTIAL, 'Too many iterations');
      if (u.salt.length === 0) return fail(ERR.UNACCEPTABLE_CREDENTIAL, 'Salt must not be empty');
      if (u.saltedPassword.length === 0) return fail(ERR.UNACCEPTABLE_CREDENTIAL, 'Salted password must not be empty');
    }
    for (const d of deletions) if (!users.get(user)?.credentials[mechanismOf(d.mechanism)!]) return fail(ERR.RESOURCE_NOT_FOUND, 'Attempt to delete a user credential that does not exist');
    for (const d of deletions) users.deleteCredential(user, mechanismOf(d.mechanism)!);
    for (const u of upsertions) {
      const mechanism = mechanismOf(u.mechanism)!;
      users.putCredential(user, mechanism, credentialFrom(mechanism, u.saltedPassword, u.salt, u.iterations));
    }
    ctx.server.logger.info('kafka user credentials changed', { user, deleted: deletions.map((d) => mechanismOf(d.mechanism)), set: upsertions.map((u) => mechanismOf(u.mechanism)) });
    return { user, errorCode: 0, errorMessage: null };
  });
  return { throttleTimeMs: 0, results };
}

export const saslApis: ApiTable = {
  17: { min: 0, max: 1, handle: saslHandshake },
  36: { min: 0, max: 2, handle: saslAuthenticate },
  50: { min: 0, max: 0, handle: describeUserScramCredentials },
  51: { min: 0, max: 0, handle: alterUserScramCredentials },
};
