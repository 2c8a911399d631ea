/**
 * "Test connection": tries a configuration without keeping anything and says
 * which step failed. AMQP first (reachability, TLS, login, vhost), then the
 * management API (needed for browsing and statistics). AMQP reports a missing
 * vhost and a forbidden one with the same words, so the management API is
 * asked which of the two it is.
 */
import type { RabbitConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorDeps } from '../deps.js';
import { classifyOpenError, closeQuietly, openAmqp } from './amqp.js';
import { resolveRabbit, type ResolvedRabbit } from './config.js';
import { apiPath, ManagementClient, ManagementError, type MgmtOverview } from './management.js';

export const DEFAULT_TEST_TIMEOUT_MS = 5_000;

export const INSECURE_TLS_WARNING =
  'TLS certificate verification is OFF for this connection: anyone on the network path can impersonate the server and read its credentials.';

function managementClient(r: ResolvedRabbit, timeoutMs: number): ManagementClient {
  return new ManagementClient({ ...r.management, tls: r.tls, timeoutMs });
}

async function vhostProblem(r: ResolvedRabbit, timeoutMs: number): Promise<Pick<ConnectionTestResult, 'problem' | 'message'>> {
  const where = `${r.host}:${r.port}`;
  const mgmt = managementClient(r, timeoutMs);
  try {
    await mgmt.get(`${apiPath('queues', r.vhost)}?columns=name`);
    // The vhost is there (the management user sees it): the AMQP user may not use it.
    return { problem: 'vhost_forbidden', message: `vhost "${r.vhost}" exists on ${where}, but user "${r.username}" has no permissions on it` };
  } catch (error) {
    if (error instanceof ManagementError && error.failure === 'not_found') {
      return { problem: 'vhost_missing', message: `vhost "${r.vhost}" does not exist on ${where}` };
    }
    if (error instanceof ManagementError && error.failure === 'auth' && /virtual host|vhost/i.test(error.reason ?? '')) {
      return { problem: 'vhost_forbidden', message: `vhost "${r.vhost}" exists on ${where}, but user "${r.username}" has no permissions on it` };
    }
    return {
      problem: 'vhost_missing',
      message: `vhost "${r.vhost}" does not exist on ${where}, or user "${r.username}" may not use it (the management API could not tell which: ${r.scrub(
        (error as Error).message,
      )})`,
    };
  } finally {
    mgmt.close();
  }
}

export interface TestOptions {
  timeoutMs?: number;
}

export async function testRabbitConnection(config: RabbitConnectionConfig, deps: ConnectorDeps, options: TestOptions = {}): Promise<ConnectionTestResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TEST_TIMEOUT_MS;
  const r = resolveRabbit(config);
  const result = await run(r, timeoutMs);
  deps.logger.info('rabbitmq connection test', { target: r.target, ok: result.ok, problem: result.problem ?? null });
  return { ...result, message: r.scrub(result.message) };
}

async function run(r: ResolvedRabbit, timeoutMs: number): Promise<ConnectionTestResult> {
  let server: Record<string, unknown> = {};
  try {
    const model = await openAmqp(r, { timeoutMs, name: 'Brokerdeck connection test' });
    const props = (model.connection.serverProperties ?? {}) as unknown as Record<string, unknown>;
    server = {
      product: props.product,
      version: props.version,
      clusterName: props.cluster_name,
    };
    await closeQuietly(model);
  } catch (error) {
    const classified = classifyOpenError(error, r);
    if (classified.problem === 'vhost_missing') return { ok: false, ...(await vhostProblem(r, timeoutMs)) };
    return { ok: false, problem: classified.problem, message: classified.message };
  }

  const mgmt = managementClient(r, timeoutMs);
  try {
    const overview = await mgmt.get<MgmtOverview>('/api/overview');
    // The management user must see this vhost too, or every list would fail later.
    await mgmt.get(`${apiPath('queues', r.vhost)}?columns=name`);
    const details: Record<string, unknown> = {
      rabbitmqVersion: overview.rabbitmq_version ?? overview.product_version ?? server.version,
      product: overview.product_name ?? server.product,
      clusterName: overview.cluster_name ?? server.clusterName,
      erlangVersion: overview.erlang_version,
      managementVersion: overview.management_version,
      node: overview.node,
      vhost: r.vhost,
      user: r.username,
      target: r.target,
      managementUrl: mgmt.base,
      ...(r.insecure ? { warning: INSECURE_TLS_WARNING } : {}),
    };
    return {
      ok: true,
      message: `Connected to ${details.product ?? 'RabbitMQ'} ${details.rabbitmqVersion ?? ''} (cluster ${details.clusterName ?? 'unknown'}) as "${r.username}" on vhost "${r.vhost}"${
        r.insecure ? `. ${INSECURE_TLS_WARNING}` : ''
      }`,
      details,
    };
  } catch (error) {
    const e = error as ManagementError;
    const where = mgmt.base;
    switch (e instanceof ManagementError ? e.failure : 'unreachable') {
      case 'auth':
        return {
          ok: false,
          problem: 'management_auth_failed',
          message: /virtual host|vhost/i.test(e.reason ?? '')
            ? `AMQP works, but the management API user may not see vhost "${r.vhost}" (${where})`
            : `AMQP works, but the management API at ${where} refused the credentials: ${e.reason ?? 'unauthorized'} (the user needs the "management" or "monitoring" tag)`,
        };
      case 'tls':
        return { ok: false, problem: 'tls_error', message: `AMQP works, but ${e.message}` };
      case 'timeout':
      case 'unreachable':
      case 'not_management':
      case 'not_found':
      default:
        return {
          ok: false,
          problem: 'management_unavailable',
          message:
            `AMQP works, but ${e instanceof ManagementError ? e.message : `the management API at ${where} is not available`}. ` +
            'Enable it on the server with "rabbitmq-plugins enable rabbitmq_management", or set the management URL if it listens elsewhere.',
          details: { ...server, vhost: r.vhost, target: r.target },
        };
    }
  } finally {
    mgmt.close();
  }
}
