/**
 * CPU time spent by the broker under test and by this process during one
 * timed run, so a comparison can say where its time went (a slower run that
 * also cost the broker more CPU points at the broker's work, one that cost
 * this process more at Brokerdeck's). The broker's figure is read from
 * /proc, so it exists only for a broker on this Linux machine whose process
 * id is known; elsewhere it is left out.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** User plus system CPU of a process in ms, or null when /proc cannot say (another OS, a process gone). */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / clockTicks() : null;
  } catch {
    return null;
  }
}

export interface CpuSpent {
  /** The broker's CPU in ms, null when unknown. */
  broker: number | null;
  /** This process's CPU in ms (Brokerdeck's connector runs in it). */
  self: number;
}

/** Starts counting; the returned function gives the CPU spent since. */
export function cpuMeter(brokerPid: number | null): () => CpuSpent {
  const broker0 = brokerPid === null ? null : processCpuMs(brokerPid);
  const self0 = process.cpuUsage();
  return () => {
    const broker1 = brokerPid === null ? null : processCpuMs(brokerPid);
    const self = process.cpuUsage(self0);
    return {
      broker: broker0 === null || broker1 === null ? null : broker1 - broker0,
      self: (self.user + self.system) / 1000,
    };
  };
}

/**
 * "CPU per 1,000 messages: RabbitMQ 125 vs 108 ms, Brokerdeck's process 50 ms": the broker's CPU
 * in Brokerdeck's run and in the peer's, then Brokerdeck's process in its own run, for `n` items.
 * The broker's part is left out when either run has no figure for it.
 */
export function cpuNote(ours: CpuSpent, peer: CpuSpent, n: number, brokerName: string, items: string): string {
  const per = (ms: number) => Math.round((ms * 1000) / n);
  const broker = ours.broker !== null && peer.broker !== null ? `${brokerName} ${per(ours.broker)} vs ${per(peer.broker)} ms, ` : '';
  return `CPU per 1,000 ${items}: ${broker}Brokerdeck's process ${per(ours.self)} ms`;
}
