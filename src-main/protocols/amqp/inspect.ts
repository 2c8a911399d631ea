/**
 * A read-only view of the AMQP listener's connections, as RabbitMQ's console
 * shows them: who connected (the client properties they sent), to which
 * virtual host as which user, their channels and consumers, and how many
 * bytes flow each way. Closing one sends connection.close 320
 * CONNECTION_FORCED with the reason given, as the console's "Force Close" does.
 */
import type { AmqpChannelInfo, AmqpConnectionInfo } from '../../contract/types.js';
import type { Channel as AmqpChannel } from './channel.js';
import type { AmqpConnection } from './connection.js';
import type { AmqpServer } from './server.js';

interface Sample {
  at: number;
  bytesIn: number;
  bytesOut: number;
  rateIn: number | null;
  rateOut: number | null;
}

interface ChannelSample {
  at: number;
  published: number;
  delivered: number;
  acked: number;
  rates: AmqpChannelInfo['rates'];
}

/** Rates are measured over at least this long, so that two quick looks in a row do not show noise. */
const MIN_RATE_WINDOW_MS = 1_000;

export class AmqpInspector {
  /** The previous look at each connection, for rates; gone with the connection. */
  private readonly samples = new WeakMap<AmqpConnection, Sample>();
  /** The previous look at each channel, for its message rates; gone with the channel. */
  private readonly channelSamples = new WeakMap<AmqpChannel, ChannelSample>();

  constructor(private readonly server: AmqpServer) {}

  connections(now = Date.now()): AmqpConnectionInfo[] {
    return this.server.list().map((c) => this.describe(c, now));
  }

  channels(id: string, now = Date.now()): AmqpChannelInfo[] | null {
    const c = this.find(id);
    if (!c) return null;
    return [...c.channels.values()].map((ch) => this.describeChannel(ch, now)).sort((a, b) => a.number - b.number);
  }

  /** A channel with its message rates, measured since the previous look (at least a second before). */
  private describeChannel(ch: AmqpChannel, now: number): AmqpChannelInfo {
    const info = ch.inspect();
    const last = this.channelSamples.get(ch);
    let sample: ChannelSample = { at: now, published: info.published, delivered: info.delivered, acked: info.acked, rates: null };
    if (last && now - last.at < MIN_RATE_WINDOW_MS) sample = last;
    else if (last) {
      const seconds = (now - last.at) / 1000;
      const per = (a: number, b: number) => Math.max(0, (a - b) / seconds);
      sample.rates = { publish: per(info.published, last.published), deliver: per(info.delivered, last.delivered), ack: per(info.acked, last.acked) };
    }
    this.channelSamples.set(ch, sample);
    return { ...info, rates: sample.rates };
  }

  /** False when no such connection is open. */
  close(id: string, reason: string): boolean {
    const c = this.find(id);
    if (!c || c.state === 'closing' || c.state === 'closed') return false;
    c.shutdown(reason);
    return true;
  }

  private find(id: string): AmqpConnection | undefined {
    return this.server.list().find((c) => c.id === id);
  }

  private describe(c: AmqpConnection, now: number): AmqpConnectionInfo {
    const bytesIn = c.socket.bytesRead;
    const bytesOut = c.socket.bytesWritten;
    const last = this.samples.get(c);
    let sample: Sample = { at: now, bytesIn, bytesOut, rateIn: null, rateOut: null };
    if (last && now - last.at < MIN_RATE_WINDOW_MS) sample = last;
    else if (last) {
      const seconds = (now - last.at) / 1000;
      sample.rateIn = Math.max(0, (bytesIn - last.bytesIn) / seconds);
      sample.rateOut = Math.max(0, (bytesOut - last.bytesOut) / seconds);
    }
    this.samples.set(c, sample);
    const state = c.state === 'running' || c.state === 'closing' || c.state === 'closed' ? c.state : 'opening';
    return {
      id: c.id,
      name: c.client.connectionName ?? null,
      product: c.client.product ?? null,
      version: c.client.version ?? null,
      platform: c.client.platform ?? null,
      remote: c.info.remote,
      user: c.user?.name ?? null,
      vhost: c.vhost,
      state,
      tls: c.info.tls,
      channels: c.channels.size,
      connectedAt: c.info.connectedAt,
      bytesIn,
      bytesOut,
      rateIn: sample.rateIn,
      rateOut: sample.rateOut,
    };
  }
}
