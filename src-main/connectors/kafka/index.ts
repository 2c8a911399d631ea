/**
 * The Kafka connection kind: `kafkaFactory` creates connectors from saved
 * configurations and runs "Test connection", which tells apart an
 * unreachable cluster, refused credentials, TLS failures, a listener that
 * speaks another protocol, and a broker that does not answer in time.
 */
import { Admin } from '@platformatic/kafka';
import type { KafkaConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorDeps, ConnectorFactory } from '../deps.js';
import { baseOptions, classify, INSECURE_TLS_WARNING, target } from './client.js';
import { inferVersion, KafkaConnector, type KafkaConnectorOptions } from './connector.js';
import { closeQuietly } from './redrive.js';

export const DEFAULT_TEST_TIMEOUT_MS = 10_000;

export interface KafkaTestOptions {
  timeoutMs?: number;
}

export async function testKafkaConnection(config: KafkaConnectionConfig, deps: ConnectorDeps, options: KafkaTestOptions = {}): Promise<ConnectionTestResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TEST_TIMEOUT_MS;
  const where = config.brokers.join(', ');
  const login = config.sasl ? { user: config.sasl.username, mechanism: config.sasl.mechanism } : undefined;
  const admin = new Admin(baseOptions(config, 'test', { retries: 0, connectTimeoutMs: Math.min(5_000, timeoutMs), requestTimeoutMs: timeoutMs }));
  let timer: NodeJS.Timeout | undefined;
  let result: ConnectionTestResult;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    });
    const [md, apis] = await Promise.race([Promise.all([admin.metadata({ topics: [], forceUpdate: true }), admin.listApis()]), deadline]);
    const brokers = [...md.brokers].map(([id, b]) => ({ id, host: b.host, port: b.port, rack: b.rack ?? null }));
    const version = inferVersion(apis);
    result = {
      ok: true,
      message: `connected to cluster ${md.id}: ${brokers.length} broker${brokers.length === 1 ? '' : 's'}, controller ${md.controllerId}, Kafka ${version}`,
      details: {
        clusterId: md.id,
        controllerId: md.controllerId,
        brokers,
        version,
        ...(config.tls?.insecureSkipVerify ? { warning: INSECURE_TLS_WARNING } : {}),
      },
    };
  } catch (error) {
    const c = classify(error, where, login);
    result = { ok: false, problem: c.problem ?? 'protocol_error', message: c.message };
  } finally {
    if (timer) clearTimeout(timer);
    await closeQuietly(admin);
  }
  deps.logger.info('kafka connection test', { target: target(config), ok: result.ok, problem: result.problem ?? null });
  return result;
}

export function createKafkaConnector(id: string, config: KafkaConnectionConfig, deps: ConnectorDeps, options?: KafkaConnectorOptions): KafkaConnector {
  return new KafkaConnector(id, config, deps, options);
}

export const kafkaFactory: ConnectorFactory<KafkaConnectionConfig> = {
  create: (id, config, deps) => createKafkaConnector(id, config, deps),
  test: (config, deps) => testKafkaConnection(config, deps),
};

export { KafkaConnector, inferVersion } from './connector.js';
export type { ClusterOverview, KafkaConnectorOptions, TopicConfigEntry } from './connector.js';
export type { GroupOffsetChange, GroupOffsetsPreview, GroupOffsetsResetArgs, ResetTo } from './groups.js';
export type { DeadLetterOrigin, DecodedValue, KafkaRecordView } from './records.js';
export type { KafkaRedriveJob, RedriveArgs } from './redrive.js';
export { HEADER_AT, HEADER_FROM, HEADER_JOB } from './redrive.js';
export { javaPartition } from './produce.js';
export { deadLetterNaming } from './deadletters.js';
