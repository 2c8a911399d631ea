/**
 * What the SQS, SNS and Kinesis tests share: a logger and audit log that keep
 * what they were given, connection configurations for the test server, and
 * unique names so tests never meet each other's queues.
 */
import { randomBytes } from 'node:crypto';
import type { ConnectorDeps } from '../../../src-main/connectors/deps.js';
import type { AuditEntry } from '../../../src-main/contract/types.js';
import type { AwsTestServer } from '../../aws/servers.js';

export interface TestDeps extends ConnectorDeps {
  lines: string[];
  readonly audits: AuditEntry[];
}

export function testDeps(): TestDeps {
  const lines: string[] = [];
  const audits = new Map<string, AuditEntry>();
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ''}`);
  };
  return {
    lines,
    get audits() {
      return [...audits.values()];
    },
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    audit: {
      record: (e) => void audits.set(e.id, { ...e }),
      list: (connectionId, limit) =>
        [...audits.values()]
          .filter((e) => e.connectionId === connectionId)
          .sort((a, b) => b.at - a.at)
          .slice(0, limit),
    },
  };
}

export function awsConfig<K extends 'sqs' | 'sns' | 'kinesis'>(kind: K, server: AwsTestServer, name = `test ${kind}`) {
  return { kind, name, endpoint: server.endpoint, region: server.region, ...server.credentials, readOnly: false } as const;
}

export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
