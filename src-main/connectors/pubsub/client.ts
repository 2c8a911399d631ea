/**
 * How a saved Pub/Sub configuration becomes the client library's clients, and
 * how their errors become errors a person can act on.
 *
 * The connection uses the library's generated clients (v1.PublisherClient and
 * v1.SubscriberClient) with options of its own, never process-wide variables, so an
 * emulator connection and a Google Cloud one live side by side: an emulator gets its
 * host, port and insecure channel credentials (the library's emulator mode, given the
 * host explicitly, so PUBSUB_EMULATOR_HOST is never read) and a fixed universe domain, so the
 * auth library never looks for credentials or probes the metadata server; a key file
 * is given as `keyFilename` after it was checked here, so a wrong path, a file that is
 * not JSON or a key that is not a service-account key is named clearly; with neither,
 * the application default credentials apply. Credentials never reach logs or errors.
 */
import { readFileSync, statSync } from 'node:fs';
import { PubSub, v1 } from '@google-cloud/pubsub';
import { ApiError } from '../../contract/errors.js';
import type { PubsubConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';

export type PublisherClient = InstanceType<typeof v1.PublisherClient>;
export type SubscriberClient = InstanceType<typeof v1.SubscriberClient>;

type ClientOptions = NonNullable<ConstructorParameters<typeof v1.PublisherClient>[0]>;

export interface PubsubClients {
  publisher: PublisherClient;
  subscriber: SubscriberClient;
}

/** Checks a service-account key file; the error names `keyFile` and what is wrong with it. */
export function checkKeyFile(path: string): { clientEmail: string } {
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new ApiError('INVALID_ARGUMENT', `keyFile: ${path} is not a file`, 'keyFile');
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ApiError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code ?? (error as Error).message})`;
    throw new ApiError('INVALID_ARGUMENT', `keyFile: ${path} ${why}`, 'keyFile');
  }
  let key: unknown;
  try {
    key = JSON.parse(text);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', `keyFile: ${path} is not JSON: a service-account key is the JSON file Google Cloud gives when you create a key`, 'keyFile');
  }
  const k = (key ?? {}) as Record<string, unknown>;
  if (typeof key !== 'object' || Array.isArray(key) || k.type !== 'service_account') {
    const type = typeof k.type === 'string' ? `its type is "${k.type}"` : 'it has no "type"';
    throw new ApiError('INVALID_ARGUMENT', `keyFile: ${path} is not a service-account key (${type}; expected "service_account")`, 'keyFile');
  }
  if (typeof k.client_email !== 'string' || typeof k.private_key !== 'string' || !k.private_key.includes('PRIVATE KEY')) {
    throw new ApiError('INVALID_ARGUMENT', `keyFile: ${path} is a service-account key without client_email or private_key`, 'keyFile');
  }
  return { clientEmail: k.client_email };
}

/** The generated clients' options for one configuration. */
export function clientOptions(config: PubsubConnectionConfig): ClientOptions {
  if (config.emulatorHost) {
    // The library's own emulator set-up gives insecure channel credentials of the gRPC it
    // loads itself (a copy of @grpc/grpc-js bundled with the app would not be accepted).
    const emulator = new PubSub({ projectId: config.projectId, apiEndpoint: config.emulatorHost, emulatorMode: true, universeDomain: 'googleapis.com' });
    const { servicePath, port, sslCreds } = emulator.options;
    return { projectId: config.projectId, servicePath, port, sslCreds, universeDomain: 'googleapis.com' } as ClientOptions;
  }
  const out: ClientOptions = { projectId: config.projectId, servicePath: 'pubsub.googleapis.com', port: 443 };
  if (config.keyFile) {
    checkKeyFile(config.keyFile);
    out.keyFilename = config.keyFile;
  }
  return out;
}

export function createClients(config: PubsubConnectionConfig): PubsubClients {
  const options = clientOptions(config);
  return { publisher: new v1.PublisherClient(options), subscriber: new v1.SubscriberClient(options) };
}

/**
 * Loads the credentials before any call. The generated clients create their gRPC stub
 * on the first call, and when the credentials cannot be loaded there (no application
 * default credentials) they throw the error outside any promise, which would end the
 * process; loaded first, that failure is an ordinary error naming what to do.
 */
export async function ensureCredentials(c: PubsubClients, config: PubsubConnectionConfig): Promise<void> {
  if (config.emulatorHost) return;
  try {
    await Promise.all([c.publisher.auth.getClient(), c.subscriber.auth.getClient()]);
  } catch (error) {
    const text = (error as Error).message ?? String(error);
    if (config.keyFile) throw new ApiError('UNAUTHORIZED', `keyFile: the key in ${config.keyFile} could not be used: ${text}`, 'keyFile');
    throw new ApiError(
      'UNAUTHORIZED',
      `no Google Cloud credentials: give keyFile (a service-account key), or set up application default credentials (gcloud auth application-default login): ${text}`,
      'keyFile',
    );
  }
}

export async function closeClients(c: PubsubClients): Promise<void> {
  await Promise.allSettled([c.publisher.close(), c.subscriber.close()]);
}

/** Where a connection points, without credentials. */
export function targetOf(config: PubsubConnectionConfig): string {
  return config.emulatorHost ? `pubsub emulator ${config.emulatorHost} (project ${config.projectId})` : `pubsub.googleapis.com (project ${config.projectId})`;
}

// ---------------------------------------------------------------- names

export const topicPath = (project: string, topic: string) => `projects/${project}/topics/${topic}`;
export const subscriptionPath = (project: string, sub: string) => `projects/${project}/subscriptions/${sub}`;

/** The short name of `projects/p/topics/t` (or `…/subscriptions/s`); a topic of another project keeps its full path. */
export function shortName(path: string | null | undefined, project: string): string {
  if (!path) return '';
  const m = /^projects\/([^/]+)\/(?:topics|subscriptions)\/(.+)$/.exec(path);
  if (!m) return path;
  return m[1] === project ? m[2]! : path;
}

/** A name as given (short, or a full path) as the full path. */
export function fullTopic(project: string, name: string): string {
  return name.startsWith('projects/') ? name : topicPath(project, name);
}
export function fullSubscription(project: string, name: string): string {
  return name.startsWith('projects/') ? name : subscriptionPath(project, name);
}

// ---------------------------------------------------------------- errors

interface GrpcLikeError {
  code?: number | string;
  details?: string;
  message?: string;
  reason?: string;
}

const G = { CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, FAILED_PRECONDITION: 9, UNAVAILABLE: 14, UNAUTHENTICATED: 16 };

function textOf(e: GrpcLikeError, error: unknown): string {
  return (e.details || e.message || String(error)).replace(/\s+/g, ' ').trim();
}

/**
 * What a person needs of a library error: the client library's retries pile every
 * attempt's error into one message, so the socket's own error is taken where there
 * is one, and anything else is cut short.
 */
function brief(text: string): string {
  const socket = /(connect E[A-Z]+ [^\s,)}]+|getaddrinfo E[A-Z]+ [^\s,)}]+)/.exec(text);
  if (socket) return socket[1]!.replace(/[.;:]+$/, '');
  return text.length > 300 ? `${text.slice(0, 297)}…` : text;
}

/** Each way a call can fail, told apart for "Test connection" and for the connection's status. */
export function classifyError(error: unknown, target: string, config: PubsubConnectionConfig): { problem: NonNullable<ConnectionTestResult['problem']>; message: string } {
  const e = (error ?? {}) as GrpcLikeError;
  const text = textOf(e, error);
  if (error instanceof ApiError) return { problem: error.code === 'UNAUTHORIZED' ? 'auth_failed' : 'config_error', message: error.message };
  if (e.code === G.UNAVAILABLE || /UNAVAILABLE|ECONNREFUSED|No connection established|ENOTFOUND|getaddrinfo/.test(text)) {
    const hint = config.emulatorHost ? ': is the emulator running there?' : '';
    return { problem: 'unreachable', message: `${target} cannot be reached${hint} (${brief(text)})` };
  }
  if (e.code === G.DEADLINE_EXCEEDED || /Total timeout|deadline exceeded/i.test(text)) return { problem: 'timeout', message: `${target} did not answer in time (${brief(text)})` };
  if (e.code === G.UNAUTHENTICATED || /Could not load the default credentials|invalid_grant|invalid_client|UNAUTHENTICATED/i.test(text)) {
    return { problem: 'auth_failed', message: `Google Cloud refused the credentials${config.keyFile ? ` of keyFile ${config.keyFile}` : ' (application default credentials)'}: ${text}` };
  }
  if (e.code === G.PERMISSION_DENIED) {
    return { problem: 'forbidden', message: `the credentials are valid but lack permission in project "${config.projectId}" (or the project does not exist): ${text}` };
  }
  if (e.code === G.NOT_FOUND && /project/i.test(text)) return { problem: 'config_error', message: `project "${config.projectId}" does not exist: ${text}` };
  return { problem: 'protocol_error', message: `${target} answered with an error: ${brief(text)}` };
}

/** A client-library error as the contract's error; `notFound` names what a NOT_FOUND is about. */
export function toApiError(error: unknown, target: string, config: PubsubConnectionConfig, notFound?: { what: string; field: string }): ApiError {
  if (error instanceof ApiError) return error;
  const e = (error ?? {}) as GrpcLikeError;
  const text = textOf(e, error);
  if (e.code === G.NOT_FOUND) {
    if (notFound && !/project/i.test(text)) return new ApiError('NOT_FOUND', `${notFound.what} does not exist`, notFound.field);
    return new ApiError('NOT_FOUND', /project/i.test(text) ? `project "${config.projectId}" does not exist: ${text}` : text, notFound?.field);
  }
  if (e.code === G.ALREADY_EXISTS) return new ApiError('CONFLICT', `${notFound?.what ?? 'it'} already exists`, notFound?.field);
  if (e.code === G.INVALID_ARGUMENT) return new ApiError('INVALID_ARGUMENT', `Pub/Sub refused the request: ${text}`, notFound?.field);
  if (e.code === G.FAILED_PRECONDITION) return new ApiError('PRECONDITION_FAILED', `Pub/Sub refused the request: ${text}`, notFound?.field);
  const c = classifyError(error, target, config);
  switch (c.problem) {
    case 'unreachable':
    case 'timeout':
      return new ApiError('UNAVAILABLE', c.message);
    case 'auth_failed':
      return new ApiError('UNAUTHORIZED', c.message);
    case 'forbidden':
      return new ApiError('FORBIDDEN', c.message);
    case 'config_error':
      return new ApiError('INVALID_ARGUMENT', c.message, 'projectId');
    default:
      return new ApiError('UNAVAILABLE', c.message);
  }
}

/** Runs `work` on at most `limit` items at a time, answers in the input's order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]!, i);
      }
    }),
  );
  return out;
}
