/**
 * The state every AWS connection keeps the same way (SQS, SNS, Kinesis): its
 * status and last error, read-only, closed, and a configuration the SDK could
 * not use. Every request goes through `call`, whose outcome sets the status;
 * writes check `writable` first.
 */
import { ApiError } from '../../contract/errors.js';
import type { AwsConnectionConfig } from '../../contract/operations.js';
import type { ConnectionStatus } from '../../contract/types.js';
import { clientConfig, toApiError, type AwsClientConfig, type AwsClientOptions } from './client.js';

export class AwsConnectionState {
  status: ConnectionStatus = 'connecting';
  lastError: string | null = null;
  closed = false;
  readOnly: boolean;
  /** Set when the configuration could not become a client configuration (no region anywhere). */
  configError: string | null = null;

  constructor(
    readonly id: string,
    readonly target: string,
    readOnly: boolean,
  ) {
    this.readOnly = readOnly;
  }

  /**
   * The SDK configuration of one client, or, when the saved configuration cannot give
   * one, a placeholder that is never used (calls are refused with the reason) and a
   * connection that says why.
   */
  clientConfig(config: AwsConnectionConfig, options?: AwsClientOptions): AwsClientConfig | { region: string; credentials: { accessKeyId: string; secretAccessKey: string } } {
    try {
      return clientConfig(config, options);
    } catch (error) {
      this.status = 'error';
      this.lastError = (error as Error).message;
      this.configError = this.lastError;
      return { region: 'us-east-1', credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' } };
    }
  }

  writable(what: string): void {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to ${what}`, 'connectionId');
  }

  async call<T>(fn: () => Promise<T>, notFound?: { what: string; field: string }): Promise<T> {
    if (this.closed) throw new ApiError('UNAVAILABLE', `connection "${this.id}" is closed`);
    // A configuration the SDK could not use never reaches AWS with the placeholder client.
    if (this.configError) throw new ApiError('INVALID_ARGUMENT', this.configError, 'region');
    try {
      const out = await fn();
      this.status = 'connected';
      this.lastError = null;
      return out;
    } catch (error) {
      const e = toApiError(error, this.target, notFound);
      if (e.code === 'UNAVAILABLE' || e.code === 'UNAUTHORIZED' || e.code === 'FORBIDDEN') {
        this.status = 'error';
        this.lastError = e.message;
      }
      throw e;
    }
  }

  /** What `info()` says of the connection's state. */
  infoFields(): { status: ConnectionStatus; readOnly: boolean; error?: string } {
    return { status: this.status, readOnly: this.readOnly, ...(this.lastError ? { error: this.lastError } : {}) };
  }
}
