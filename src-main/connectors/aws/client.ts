/**
 * What the SQS, SNS and Kinesis connections share: how a saved configuration
 * becomes an AWS SDK v3 client configuration, and how the SDK's errors become
 * errors a person can act on (unreachable, bad credentials, no permission).
 *
 * Credentials come from the configuration (an access key pair), a named profile
 * of ~/.aws/config and ~/.aws/credentials, or, with neither, the SDK's default
 * chain (environment, SSO, instance role…). They are never logged: only the
 * target (endpoint or region) is.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ApiError } from '../../contract/errors.js';
import type { AwsConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';

export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  profile?: string;
  maxAttempts: number;
  requestHandler: NodeHttpHandler;
}

export interface AwsClientOptions {
  /** Sockets per host: bulk work (a re-drive) runs many requests at once. */
  maxSockets?: number;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxAttempts?: number;
}

/** The region: the configuration's, else the environment's; a clear error naming the field when neither says. */
export function regionOf(config: AwsConnectionConfig): string {
  const region = config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new ApiError('INVALID_ARGUMENT', 'region: give the AWS region (such as eu-west-1); AWS_REGION is not set either', 'region');
  return region;
}

/**
 * One client configuration. The HTTP handler is the SDK's plain Node handler with
 * keep-alive agents of our own, sized for the work (a re-drive runs many requests at
 * once), and timeouts, so a server that stops answering fails a call instead of
 * holding it.
 */
export function clientConfig(config: AwsConnectionConfig, options: AwsClientOptions = {}): AwsClientConfig {
  const maxSockets = options.maxSockets ?? 50;
  const out: AwsClientConfig = {
    region: regionOf(config),
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: options.connectTimeoutMs ?? 5_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    }),
  };
  if (config.endpoint) out.endpoint = config.endpoint;
  if (config.accessKeyId && config.secretAccessKey) {
    out.credentials = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}) };
  } else if (config.profile) out.profile = config.profile;
  return out;
}

/** Where a connection points, without credentials. */
export function targetOf(config: AwsConnectionConfig, service: string): string {
  if (config.endpoint) return config.endpoint;
  return `${service}.${config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? '(default region)'}.amazonaws.com`;
}

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
}

const AUTH_ERRORS = new Set([
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'InvalidSignatureException',
  'IncompleteSignature',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidAccessKeyId',
  'InvalidSecurity',
  'MissingAuthenticationToken',
  'AuthFailure',
  'NotAuthorized',
]);
const FORBIDDEN_ERRORS = new Set(['AccessDenied', 'AccessDeniedException', 'AuthorizationError', 'KMS.AccessDeniedException']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

function errorName(error: AwsLikeError): string {
  return error.Code ?? error.name ?? error.code ?? '';
}

/** Each way a request can fail, told apart for "Test connection" and for the connection's status. */
export function classifyAwsError(error: unknown, target: string): { problem: NonNullable<ConnectionTestResult['problem']>; message: string } {
  const e = (error ?? {}) as AwsLikeError;
  const name = errorName(e);
  const text = e.message ?? String(error);
  if (NETWORK_CODES.has(e.code ?? '') || NETWORK_CODES.has(name) || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(text)) {
    return { problem: 'unreachable', message: `${target} cannot be reached: ${text}` };
  }
  if (name === 'TimeoutError' || /timed? ?out/i.test(text)) return { problem: 'timeout', message: `${target} did not answer in time: ${text}` };
  if (AUTH_ERRORS.has(name)) return { problem: 'auth_failed', message: `AWS refused the credentials (${name}): ${text}` };
  if (FORBIDDEN_ERRORS.has(name) || e.$metadata?.httpStatusCode === 403) {
    return { problem: 'forbidden', message: `the credentials are valid but lack permission (${name || 'HTTP 403'}): ${text}` };
  }
  if (name === 'CredentialsProviderError' || /credential|profile/i.test(text)) {
    return { problem: 'config_error', message: `no AWS credentials could be loaded: ${text}` };
  }
  if (/region/i.test(text)) return { problem: 'config_error', message: text };
  return { problem: 'protocol_error', message: `${target} answered with an error${name ? ` (${name})` : ''}: ${text}` };
}

/** Names an SQS, SNS or Kinesis error code that means "no such resource". */
export function isNotFound(error: unknown): boolean {
  const name = errorName((error ?? {}) as AwsLikeError);
  return /NonExistentQueue|QueueDoesNotExist|NotFound|ResourceNotFound/i.test(name);
}

export function awsErrorName(error: unknown): string {
  return errorName((error ?? {}) as AwsLikeError);
}

/** An SDK error as the contract's error: the problem decides the code, the message stays the system's own. */
export function toApiError(error: unknown, target: string, notFound?: { what: string; field: string }): ApiError {
  if (error instanceof ApiError) return error;
  if (notFound && isNotFound(error)) return new ApiError('NOT_FOUND', `${notFound.what} does not exist`, notFound.field);
  const name = errorName((error ?? {}) as AwsLikeError);
  const status = ((error ?? {}) as AwsLikeError).$metadata?.httpStatusCode;
  const c = classifyAwsError(error, target);
  switch (c.problem) {
    case 'unreachable':
    case 'timeout':
      return new ApiError('UNAVAILABLE', c.message);
    case 'auth_failed':
      return new ApiError('UNAUTHORIZED', c.message);
    case 'forbidden':
      return new ApiError('FORBIDDEN', c.message);
    case 'config_error':
      return new ApiError('INVALID_ARGUMENT', c.message);
    default:
      if (status !== undefined && status >= 400 && status < 500) {
        return new ApiError('INVALID_ARGUMENT', `${name ? `${name}: ` : ''}${((error ?? {}) as AwsLikeError).message ?? String(error)}`);
      }
      return new ApiError('UNAVAILABLE', c.message);
  }
}

/** Runs `work` on at most `limit` items at a time, in order of the input. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  });
  await Promise.all(runners);
  return out;
}
