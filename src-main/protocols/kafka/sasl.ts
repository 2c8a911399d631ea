/**
 * The server side of SASL on the Kafka listener: PLAIN (RFC 4616) and
 * SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka's PlainSaslServer and
 * ScramSaslServer run them, over the stored SCRAM credentials (users.ts).
 * One exchange per connection; each step takes the client's token and gives
 * the server's, or throws SaslFailure, after which Kafka closes the connection.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { digestOf, MIN_ITERATIONS, passwordMatches, SCRAM_MECHANISMS, type KafkaUserStore, type ScramMechanism } from './users.js';

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/**
 * Authentication failed: Kafka's SASL_AUTHENTICATION_FAILED. `shown`: the
 * client gets this message (Kafka's SaslAuthenticationException); otherwise
 * only that the credentials were not right, which says nothing of whether
 * the user exists (Kafka's SaslException).
 */
export class SaslFailure extends Error {
  constructor(
    message: string,
    readonly shown = false,
  ) {
    super(message);
  }
}

/** Where a connection is in its authentication. */
export interface SaslState {
  /** open: no authentication asked; handshake: waiting for SaslHandshake; authenticate: exchanging tokens; done: authenticated. */
  stage: 'open' | 'handshake' | 'authenticate' | 'done';
  mechanism: SaslMechanism | null;
  /** After SaslHandshake v0, tokens come as bare size-prefixed frames, not SaslAuthenticate requests. */
  rawTokens: boolean;
  exchange: SaslExchange | null;
  /** The authenticated user. */
  principal: string | null;
}

export interface SaslExchange {
  /** The server's answer to a client token; `done` once authenticated. */
  step(token: Buffer): { reply: Buffer; done: boolean; principal?: string };
}

export function newSaslState(required: boolean): SaslState {
  return { stage: required ? 'handshake' : 'open', mechanism: null, rawTokens: false, exchange: null, principal: null };
}

/** `serverNonce` is for checking against published test vectors; a random one otherwise. */
export function startExchange(mechanism: SaslMechanism, users: KafkaUserStore, serverNonce: () => string = randomNonce): SaslExchange {
  return mechanism === 'PLAIN' ? new PlainExchange(users) : new ScramExchange(mechanism, users, serverNonce);
}

function randomNonce(): string {
  return randomBytes(18).toString('base64').replace(/[+/=]/g, 'x');
}

/** PLAIN: "authzid NUL authcid NUL passwd" in one token. */
class PlainExchange implements SaslExchange {
  constructor(private readonly users: KafkaUserStore) {}

  step(token: Buffer): { reply: Buffer; done: boolean; principal: string } {
    const parts = token.toString('utf8').split('\u0000');
    if (parts.length !== 3) throw new SaslFailure('Invalid SASL/PLAIN response: expected 3 tokens, got ' + parts.length);
    const [authzid, user, password] = parts as [string, string, string];
    if (user === '') throw new SaslFailure('Authentication failed: username not specified', true);
    if (password === '') throw new SaslFailure('Authentication failed: password not specified', true);
    if (authzid !== '' && authzid !== user) throw new SaslFailure('Authentication failed: Client requested an authorization id that is different from username', true);
    const u = this.users.get(user);
    const mechanism = SCRAM_MECHANISMS.find((m) => u?.credentials[m]);
    if (!u || !mechanism || !passwordMatches(mechanism, password, u.credentials[mechanism]!)) throw new SaslFailure('Authentication failed: Invalid username or password', true);
    return { reply: Buffer.alloc(0), done: true, principal: user };
  }
}

/** SCRAM's saslname: "=2C" is ",", "=3D" is "=", and no other "=" may appear. */
function saslName(text: string): string {
  if (/=(?!2C|3D)/.test(text)) throw new SaslFailure('Invalid SCRAM client first message: bad username encoding');
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** "k=v,k=v" attributes, in order; values may hold "=" (Kafka's extensions have longer keys: "tokenauth=true"). */
function attributes(text: string): Array<[string, string]> {
  return text.split(',').map((part) => {
    const at = part.indexOf('=');
    if (at < 1) throw new SaslFailure(`Invalid SCRAM message: ${JSON.stringify(part.slice(0, 20))} is not an attribute`);
    return [part[0]!, part.slice(2)];
  });
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

class ScramExchange implements SaslExchange {
  private stage: 'first' | 'final' | 'done' = 'first';
  private user = '';
  private nonce = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private readonly hash: 'sha256' | 'sha512';

  constructor(
    private readonly mechanism: ScramMechanism,
    private readonly users: KafkaUserStore,
    private readonly serverNonce: () => string,
  ) {
    this.hash = digestOf(mechanism);
  }

  step(token: Buffer): { reply: Buffer; done: boolean; principal?: string } {
    if (this.stage === 'first') return this.first(token.toString('utf8'));
    if (this.stage === 'final') return this.final(token.toString('utf8'));
    throw new SaslFailure('Invalid SCRAM exchange: already complete');
  }

  private first(message: string): { reply: Buffer; done: boolean } {
    // gs2-header: "n," or "y," (no channel binding here), then an optional "a=authzid", then ","
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(message);
    if (!m) throw new SaslFailure('Invalid SCRAM client first message');
    this.clientFirstBare = m[3]!;
    const attrs = attributes(this.clientFirstBare);
    if (attrs[0]?.[0] !== 'n' || attrs[1]?.[0] !== 'r') throw new SaslFailure('Invalid SCRAM client first message: expected n= and r=');
    this.user = saslName(attrs[0][1]);
    const clientNonce = attrs[1][1];
    if (!PRINTABLE_NONCE.test(clientNonce)) throw new SaslFailure('Invalid SCRAM client first message: bad nonce');
    const authzid = m[2] ? saslName(m[2].slice(2)) : '';
    if (authzid !== '' && authzid !== this.user) throw new SaslFailure('Authentication failed: Client requested an authorization id that is different from username');
    for (const [k, v] of attrs.slice(2)) {
      // Delegation tokens (the tokenauth extension) are not served.
      if (k === 'tokenauth' && v === 'true') throw new SaslFailure('Authentication failed: delegation tokens are not supported');
    }
    const credential = this.users.get(this.user)?.credentials[this.mechanism];
    if (!credential) throw new SaslFailure('Authentication failed: Invalid user credentials');
    if (credential.iterations < MIN_ITERATIONS) throw new SaslFailure(`Iterations ${credential.iterations} is less than the minimum ${MIN_ITERATIONS} for ${this.mechanism}`);
    this.nonce = clientNonce + this.serverNonce();
    this.serverFirst = `r=${this.nonce},s=${credential.salt},i=${credential.iterations}`;
    this.stage = 'final';
    return { reply: Buffer.from(this.serverFirst, 'utf8'), done: false };
  }

  private final(message: string): { reply: Buffer; done: boolean; principal: string } {
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt < 0) throw new SaslFailure('Invalid SCRAM client final message: no proof');
    const withoutProof = message.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs[0]?.[0] !== 'c' || attrs[1]?.[0] !== 'r') throw new SaslFailure('Invalid SCRAM client final message: expected c= and r=');
    // Kafka's ScramSaslServer takes a nonce that ends with the server's: librdkafka sends the client nonce once more in front.
    if (!attrs[1][1].endsWith(this.nonce)) throw new SaslFailure('Invalid client nonce in the final client message.');
    const credential = this.users.get(this.user)?.credentials[this.mechanism];
    if (!credential) throw new SaslFailure('Authentication failed: Invalid user credentials');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const storedKey = Buffer.from(credential.storedKey, 'base64');
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64');
    const signature = createHmac(this.hash, storedKey).update(authMessage).digest();
    if (proof.length !== signature.length) throw new SaslFailure('Authentication failed: Invalid user credentials');
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    const computed = createHash(this.hash).update(clientKey).digest();
    if (computed.length !== storedKey.length || !timingSafeEqual(computed, storedKey)) throw new SaslFailure('Authentication failed: Invalid user credentials');
    const serverSignature = createHmac(this.hash, Buffer.from(credential.serverKey, 'base64')).update(authMessage).digest('base64');
    this.stage = 'done';
    return { reply: Buffer.from(`v=${serverSignature}`, 'utf8'), done: true, principal: this.user };
  }
}
