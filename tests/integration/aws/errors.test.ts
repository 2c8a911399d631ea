/**
 * How the SQS and SNS connections name what went wrong. The local servers accept
 * any credentials, so refused credentials and missing permissions are checked on
 * the errors the AWS SDK itself builds for AWS's answers (the exception classes
 * and codes AWS documents), and on configurations the contract refuses.
 */
import { QueueDoesNotExist, SQSServiceException } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { classifyAwsError, regionOf, toApiError } from '../../../src-main/connectors/aws/client.js';
import { connectionConfigSchema } from '../../../src-main/contract/operations.js';
import { SqsConnector } from '../../../src-main/connectors/sqs/index.js';
import { testDeps } from './helpers.js';

const target = 'sqs.eu-west-1.amazonaws.com';

function awsError(name: string, status: number, message: string): SQSServiceException {
  return new SQSServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message });
}

describe('AWS errors', () => {
  it('tells refused credentials, missing permission, an unreachable endpoint and a missing queue apart', () => {
    expect(classifyAwsError(awsError('InvalidClientTokenId', 403, 'The security token included in the request is invalid.'), target)).toMatchObject({ problem: 'auth_failed' });
    expect(classifyAwsError(awsError('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match'), target)).toMatchObject({ problem: 'auth_failed' });
    expect(classifyAwsError(awsError('AccessDenied', 403, 'User is not authorized to perform: sqs:ListQueues'), target)).toMatchObject({ problem: 'forbidden' });
    expect(classifyAwsError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }), target)).toMatchObject({ problem: 'unreachable' });
    expect(toApiError(awsError('AccessDenied', 403, 'not authorized'), target)).toMatchObject({ code: 'FORBIDDEN' });
    expect(toApiError(awsError('InvalidClientTokenId', 403, 'invalid'), target)).toMatchObject({ code: 'UNAUTHORIZED' });
    const missing = new QueueDoesNotExist({ $metadata: { httpStatusCode: 400 }, message: 'The specified queue does not exist.' });
    expect(toApiError(missing, target, { what: 'queue "orders"', field: 'queue' })).toMatchObject({ code: 'NOT_FOUND', field: 'queue', message: 'queue "orders" does not exist' });
  });

  it('refuses half an access key pair, a profile with keys, and a missing region, naming the field', async () => {
    const bad = (input: object) => {
      const r = connectionConfigSchema.safeParse(input);
      return r.success ? null : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(bad({ kind: 'sqs', name: 'x', region: 'eu-west-1', accessKeyId: 'AKIA' })).toEqual(['secretAccessKey: give accessKeyId and secretAccessKey together']);
    expect(bad({ kind: 'sns', name: 'x', region: 'eu-west-1', accessKeyId: 'a', secretAccessKey: 'b', profile: 'p' })).toEqual(['profile: give either a profile or an access key pair, not both']);
    expect(bad({ kind: 'sqs', name: 'x', region: 'EU West' })?.[0]).toMatch(/^region: /);
    expect(bad({ kind: 'sqs', name: 'x', endpoint: 'localhost:9324' })?.[0]).toMatch(/^endpoint: /);
    const saved = { region: process.env.AWS_REGION, fallback: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      expect(() => regionOf({ kind: 'sqs', name: 'x', readOnly: false, allowReceiveCountRisk: false })).toThrow(expect.objectContaining({ field: 'region' }));
      // A saved connection without a region says so, and never sends a request anywhere.
      const connector = new SqsConnector('c-noregion', { kind: 'sqs', name: 'x', readOnly: false, allowReceiveCountRisk: false }, testDeps(), { sampleIntervalMs: 0 });
      try {
        expect(connector.info()).toMatchObject({ status: 'error', error: expect.stringMatching(/region/) });
        await expect(connector.listQueues()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'region' });
      } finally {
        await connector.close();
      }
    } finally {
      if (saved.region !== undefined) process.env.AWS_REGION = saved.region;
      if (saved.fallback !== undefined) process.env.AWS_DEFAULT_REGION = saved.fallback;
    }
  });
});
