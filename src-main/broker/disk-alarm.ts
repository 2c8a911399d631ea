/**
 * The disk alarm, as RabbitMQ's `disk_free_limit`: while the data folder's
 * disk has less free space than the limit, publishing is refused (consuming,
 * acking and browsing go on, so that space can be freed). The engine checks
 * once a second from its tick and when the limit changes.
 */
import { statfsSync } from 'node:fs';
import type { DiskAlarm } from './types.js';

/** RabbitMQ's default `disk_free_limit`: 50 MB. */
export const DEFAULT_DISK_FREE_LIMIT = 50_000_000;

/** Bytes in decimal units (MB = 1,000,000 bytes), as RabbitMQ states its disk limit. */
function mb(bytes: number): string {
  const [unit, size] = bytes >= 1e12 ? ['TB', 1e12] : bytes >= 1e9 ? ['GB', 1e9] : ['MB', 1e6];
  const n = bytes / size;
  return `${n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')} ${unit}`;
}

export class DiskMonitor {
  private current: DiskAlarm | null = null;

  /**
   * @param dataDir the data folder, or null for a database in memory (never checked)
   * @param limit free bytes below which the alarm goes on; 0: no check
   * @param onChange called when the alarm goes on (with its figures) or off (null)
   */
  constructor(
    private readonly dataDir: string | null,
    public limit: number,
    private readonly onChange: (alarm: DiskAlarm | null) => void,
  ) {}

  get alarm(): DiskAlarm | null {
    return this.current;
  }

  /** Reads the free space of the data folder's disk and turns the alarm on or off. */
  check(): void {
    let next: DiskAlarm | null = null;
    if (this.dataDir !== null && this.limit > 0) {
      let free: number | null = null;
      try {
        const fs = statfsSync(this.dataDir);
        free = Number(fs.bavail) * Number(fs.bsize);
      } catch {
        // A folder that cannot be asked is not taken for a full disk: writes will tell.
      }
      if (free !== null && free < this.limit) {
        next = { free, limit: this.limit, message: `disk alarm: ${mb(free)} free on the disk of ${this.dataDir}, below the limit of ${mb(this.limit)}; publishing is refused until there is room (consuming and acking go on)` };
      }
    }
    const changed = (next === null) !== (this.current === null);
    this.current = next;
    if (changed) this.onChange(next);
  }
}
