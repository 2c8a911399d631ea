/**
 * The local SQS, SNS and Kinesis servers of the integration tests.
 * `useAwsServer('sqs')` registers hooks: with SQS_ENDPOINT (SNS_ENDPOINT,
 * KINESIS_ENDPOINT) set it uses that server as is; otherwise `beforeAll` starts
 * one with tests/aws/aws.mjs (its own state file, so it never touches servers
 * started by hand or by another checkout) and `afterAll` stops it.
 *
 * When none can be had (no Java, no Maven, no npm registry) `require(ctx)` skips
 * the test with the reason; AWS_REQUIRED=1 turns that into a failure.
 *
 * Credentials and region: AWS_REGION (default us-east-1), AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY when set (local servers accept any), or AWS_PROFILE.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { stopSync } from '../servers/control.js';
import { awsScript, parseLines, runAwsScript } from './control.js';

export type AwsServerName = 'sqs' | 'sns' | 'kinesis';

export interface AwsTestServer {
  endpoint: string;
  region: string;
  /** The credentials part of a connection's configuration. */
  credentials: { accessKeyId: string; secretAccessKey: string } | { profile: string };
  /** Started here (a local stand-in), not a real AWS account. */
  local: boolean;
}

export interface AwsServerHandle {
  require(ctx: { skip: (note?: string) => never }): AwsTestServer;
  readonly server: AwsTestServer | null;
}

const ENV: Record<AwsServerName, string> = { sqs: 'SQS', sns: 'SNS', kinesis: 'KINESIS' };

function credentials(local: boolean): AwsTestServer['credentials'] {
  const env = process.env;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  if (env.AWS_PROFILE) return { profile: env.AWS_PROFILE };
  if (!local) throw new Error('an external AWS endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE');
  return { accessKeyId: 'test', secretAccessKey: 'test' };
}

export function useAwsServer(name: AwsServerName): AwsServerHandle {
  const state: { server: AwsTestServer | null; reason: string | null } = { server: null, reason: null };
  const stateFile = join(tmpdir(), 'brokerdeck-aws', `test-${name}-${process.pid}-${Date.now()}.json`);
  const region = process.env.AWS_REGION ?? 'us-east-1';
  let started = false;
  const stop = () => {
    if (started) stopSync(awsScript, stateFile);
    started = false;
  };

  beforeAll(async () => {
    const given = process.env[`${ENV[name]}_ENDPOINT`];
    if (given) {
      state.server = { endpoint: given, region, credentials: credentials(false), local: false };
      return;
    }
    const r = await runAwsScript(['start', name, '--state', stateFile], 600_000);
    const lines = parseLines(r.stdout);
    const endpoint = lines[`${ENV[name]}_ENDPOINT`];
    if (!endpoint) {
      state.reason = `no local ${name} server: ${lines[`${ENV[name]}_UNAVAILABLE`] ?? (r.stderr.trim().split('\n').slice(-4).join(' | ') || `aws.mjs exited with ${r.code}`)}`;
      // Said once in the run's output too: the reporter shows skipped tests without their note.
      console.warn(`[aws] ${state.reason}`);
      await runAwsScript(['stop', '--state', stateFile], 30_000);
      if (process.env.AWS_REQUIRED === '1') throw new Error(state.reason);
      return;
    }
    started = true;
    // A test run that dies must not leave a server behind.
    process.once('exit', stop);
    state.server = { endpoint, region, credentials: credentials(true), local: true };
  }, 600_000);

  afterAll(async () => {
    if (started) {
      await runAwsScript(['stop', '--state', stateFile], 30_000);
      started = false;
      process.removeListener('exit', stop);
    }
  }, 60_000);

  return {
    require(ctx) {
      if (!state.server) ctx.skip(state.reason ?? `no ${name} server`);
      return state.server!;
    },
    get server() {
      return state.server;
    },
  };
}
