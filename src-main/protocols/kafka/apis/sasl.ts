/**
 * SaslHandshake and SaslAuthenticate, as Kafka's SaslServerAuthenticator
 * answers them on a SASL listener: the handshake names a mechanism (an
 * unknown one is UNSUPPORTED_SASL_MECHANISM, with the list, and the
 * connection closes), then tokens go back and forth in SaslAuthenticate
 * until the client is authenticated; a failure is SASL_AUTHENTICATION_FAILED
 * and the connection closes. Without users the listener is plaintext and
 * both are ILLEGAL_SASL_STATE, as on Kafka's PLAINTEXT listener.
 */
import { ERR } from '../errors.js';
import type { SaslAuthenticateRequest } from '../generated/SaslAuthenticateRequest.js';
import type { SaslHandshakeRequest } from '../generated/SaslHandshakeRequest.js';
import { SASL_MECHANISMS, SaslFailure, startExchange, type SaslMechanism } from '../sasl.js';
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
    // PLAIN says why; SCRAM says only that the credentials were not right (Kafka's SaslServerAuthenticator).
    const failure = sasl.mechanism === 'PLAIN' ? error.message : `Authentication failed during authentication due to invalid credentials with SASL mechanism ${sasl.mechanism}`;
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

export const saslApis: ApiTable = {
  17: { min: 0, max: 1, handle: saslHandshake },
  36: { min: 0, max: 2, handle: saslAuthenticate },
};
