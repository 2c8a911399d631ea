/**
 * The broker host: the one owner of the embedded broker's lifecycle and of its
 * virtual hosts. As in RabbitMQ, each vhost has its own exchanges, queues and
 * topics; as in LavinMQ, each keeps its data in a directory of its own (its
 * own SQLite database), so that a vhost is created and deleted as a whole.
 * The default vhost `/` lives in the data directory itself (brokerdeck.db, as
 * before vhosts existed); another lives in `vhosts/<sha1 of its name>/`, and
 * `vhosts.json` lists them by name.
 *
 * Whoever serves the broker (the embedded connection, a protocol listener)
 * asks the host for a vhost's engine at each call rather than keeping one:
 * after a store failure the engine is reopened (see VirtualHost) and the old
 * one stays stopped. Events of every vhost's engine are relayed here with the
 * vhost's name, so a subscription made here survives reopens.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../ground/logger.js';
import { ensurePrivateDir } from '../storage/index.js';
import { TypedEmitter } from './emitter.js';
import type { Engine } from './engine.js';
import { BrokerError } from './errors.js';
import type { DiskAlarm, RedriveJob, TopicRecordEvent } from './types.js';
import { VirtualHost } from './virtual-host.js';

export const DEFAULT_VHOST = '/';
/** RabbitMQ's limit for a vhost name is a short string: 255 bytes of UTF-8. */
const MAX_VHOST_BYTES = 255;
const DEFINITIONS_FILE = 'vhosts.json';
const DEFINITIONS_DIR = 'vhosts';

export interface BrokerHostOptions {
  /** Directory holding brokerdeck.db; null keeps everything in memory (tests), which cannot be reopened. */
  dataDir: string | null;
  logger: Logger;
  /** See EngineOptions.diskFreeLimit. */
  diskFreeLimit?: number;
}

export interface BrokerHostEvents {
  /** A new engine replaced one whose store failed; calls go to it from now on. */
  reopened: [Engine, string];
  /** The store failed: the vhost's engine has stopped, and a reopen is under way (unless in memory). */
  failed: [Error, string];
  record: [TopicRecordEvent, string];
  redrive: [RedriveJob, string];
  /** The disk alarm of the data directory (every vhost shares the disk; told once, from `/`). */
  alarm: [DiskAlarm | null];
  vhostCreated: [string];
  /** The vhost and its data are gone: its wire connections are to be closed, as RabbitMQ does. */
  vhostDeleted: [string];
}

export interface VhostDefinition {
  name: string;
  description: string;
  createdAt: number;
}

interface Definitions {
  vhosts: (VhostDefinition & { dir: string })[];
}

/** Checks a vhost name as RabbitMQ would accept it, naming the field. */
export function checkVhostName(name: unknown, field = 'vhost'): string {
  if (typeof name !== 'string' || name.length === 0) throw new BrokerError('INVALID_ARGUMENT', 'expected a non-empty virtual host name', field);
  if (Buffer.byteLength(name, 'utf8') > MAX_VHOST_BYTES) throw new BrokerError('INVALID_ARGUMENT', `a virtual host name is at most ${MAX_VHOST_BYTES} bytes of UTF-8`, field);
  // A vhost name is part of paths, URLs and log lines: control characters would only deceive.
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new BrokerError('INVALID_ARGUMENT', 'a virtual host name may not contain control characters', field);
  return name;
}

export class BrokerHost {
  readonly events = new TypedEmitter<BrokerHostEvents>();
  private readonly vhosts = new Map<string, VirtualHost>();
  private readonly definitions = new Map<string, VhostDefinition & { dir: string }>();
  private closed = false;

  /** Opens every vhost of `dataDir` (a restart: what is not durable is dropped). */
  static open(options: BrokerHostOptions): BrokerHost {
    return new BrokerHost(options);
  }

  private constructor(private readonly options: BrokerHostOptions) {
    this.vhosts.set(DEFAULT_VHOST, this.openVhost(DEFAULT_VHOST, options.dataDir));
    for (const def of this.readDefinitions()) {
      this.definitions.set(def.name, def);
      this.vhosts.set(def.name, this.openVhost(def.name, join(options.dataDir as string, def.dir)));
    }
    options.logger.info('embedded broker opened', { dataDir: options.dataDir ?? 'memory', vhosts: this.vhosts.size });
  }

  /** The current engine of the default vhost, which may have stopped (see storeError). */
  get engine(): Engine {
    return this.vhost(DEFAULT_VHOST).engine;
  }

  /**
   * A vhost's engine, unless its store failed: then even reads are refused, because
   * its memory is ahead of its data. An unknown vhost is NOT_FOUND, naming `vhost`.
   */
  live(vhost: string = DEFAULT_VHOST): Engine {
    return this.vhost(vhost).live();
  }

  /** Why the default vhost is not serving (its store failed, or could not be reopened), or null. */
  get storeError(): string | null {
    return this.vhost(DEFAULT_VHOST).storeError;
  }

  /** Why a vhost is not serving, or null. */
  storeErrorOf(vhost: string): string | null {
    return this.vhost(vhost).storeError;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  hasVhost(name: string): boolean {
    return this.vhosts.has(name);
  }

  /** Vhost names, `/` first, the others in the order they were created. */
  vhostNames(): string[] {
    return [...this.vhosts.keys()];
  }

  describeVhost(name: string): VhostDefinition {
    this.vhost(name);
    const def = this.definitions.get(name);
    return def ? { name: def.name, description: def.description, createdAt: def.createdAt } : { name: DEFAULT_VHOST, description: 'Default virtual host', createdAt: 0 };
  }

  /** Creates a vhost; creating one that exists changes nothing (as RabbitMQ's PUT). Returns whether it was new. */
  createVhost(name: string, description = ''): boolean {
    this.checkOpen();
    checkVhostName(name);
    if (this.vhosts.has(name)) return false;
    // Always with '/', whatever the platform: the definitions file is portable, and checked on reading.
    const dir = `${DEFINITIONS_DIR}/${createHash('sha1').update(name, 'utf8').digest('hex')}`;
    const def = { name, description, createdAt: Date.now(), dir };
    const dataDir = this.options.dataDir === null ? null : join(this.options.dataDir, dir);
    // The database first, then the definition: a crash in between leaves an unlisted
    // directory (reused by the next create of that name), never a listed vhost without data.
    if (dataDir !== null) ensurePrivateDir(dataDir);
    const vhost = this.openVhost(name, dataDir);
    this.definitions.set(name, def);
    try {
      this.writeDefinitions();
    } catch (error) {
      this.definitions.delete(name);
      vhost.close();
      throw new BrokerError('UNAVAILABLE', `virtual host ${JSON.stringify(name)} could not be saved: ${(error as Error).message}`, 'vhost');
    }
    this.vhosts.set(name, vhost);
    this.options.logger.info('virtual host created', { vhost: name });
    this.events.emit('vhostCreated', name);
    return true;
  }

  /** Deletes a vhost with everything in it. The default vhost stays: every route without a vhost addresses it. */
  deleteVhost(name: string): void {
    this.checkOpen();
    const vhost = this.vhost(name);
    if (name === DEFAULT_VHOST) throw new BrokerError('PRECONDITION_FAILED', 'the default virtual host "/" cannot be deleted', 'vhost');
    const def = this.definitions.get(name);
    this.definitions.delete(name);
    this.writeDefinitions();
    this.vhosts.delete(name);
    vhost.close();
    if (def && this.options.dataDir !== null) rmSync(join(this.options.dataDir, def.dir), { recursive: true, force: true });
    this.options.logger.info('virtual host deleted', { vhost: name });
    this.events.emit('vhostDeleted', name);
  }

  /** Closes every vhost; no reopen happens after this. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const vhost of this.vhosts.values()) vhost.close();
    this.events.removeAllListeners();
  }

  private vhost(name: string): VirtualHost {
    const found = this.vhosts.get(name);
    if (!found) throw new BrokerError('NOT_FOUND', `virtual host ${JSON.stringify(name)} does not exist`, 'vhost');
    return found;
  }

  private checkOpen(): void {
    if (this.closed) throw new BrokerError('UNAVAILABLE', 'the embedded broker is closed', 'vhost');
  }

  private openVhost(name: string, dataDir: string | null): VirtualHost {
    const { logger, diskFreeLimit } = this.options;
    const emit = this.events;
    return new VirtualHost(
      { name, dataDir, logger, ...(diskFreeLimit !== undefined ? { diskFreeLimit } : {}) },
      {
        reopened: (engine) => emit.emit('reopened', engine, name),
        failed: (error) => emit.emit('failed', error, name),
        record: (event) => emit.emit('record', event, name),
        redrive: (job) => emit.emit('redrive', job, name),
        alarm: (alarm) => name === DEFAULT_VHOST && emit.emit('alarm', alarm),
      },
    );
  }

  private readDefinitions(): (VhostDefinition & { dir: string })[] {
    if (this.options.dataDir === null) return [];
    const file = join(this.options.dataDir, DEFINITIONS_FILE);
    if (!existsSync(file)) return [];
    let parsed: Definitions;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as Definitions;
    } catch (error) {
      throw new Error(`${file} is not readable JSON (${(error as Error).message}); the virtual hosts it lists are not opened until it is repaired`);
    }
    const valid = (Array.isArray(parsed?.vhosts) ? parsed.vhosts : []).filter(
      (d) => typeof d?.name === 'string' && d.name !== DEFAULT_VHOST && typeof d.dir === 'string' && /^vhosts\/[0-9a-f]{40}$/.test(d.dir),
    );
    return valid.map((d) => ({ name: d.name, description: typeof d.description === 'string' ? d.description : '', createdAt: Number(d.createdAt) || 0, dir: d.dir }));
  }

  /** Written to a temporary file and renamed over the old one, so a crash leaves the old list or the new one. */
  private writeDefinitions(): void {
    if (this.options.dataDir === null) return;
    const file = join(this.options.dataDir, DEFINITIONS_FILE);
    const body: Definitions = { vhosts: [...this.definitions.values()] };
    writeFileSync(`${file}.tmp`, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}
