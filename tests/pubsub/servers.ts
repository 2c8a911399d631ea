/**
 * The Pub/Sub emulator of the integration tests. `usePubsubEmulator()` registers
 * hooks: with PUBSUB_EMULATOR_HOST set it uses that emulator as is; otherwise
 * `beforeAll` starts one with tests/pubsub/pubsub.mjs (its own state file, so it
 * never touches an emulator started by hand or by another checkout) and `afterAll`
 * stops it (and a process exit too).
 *
 * When none can be had (no Java, no emulator) `require(ctx)` skips the test with the
 * reason; PUBSUB_REQUIRED=1 turns that into a failure.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { stopSync } from '../servers/control.js';
import { pubsubScript, startPubsubEmulator, stopPubsubEmulator } from './control.js';

export { startPubsubEmulator, stopPubsubEmulator } from './control.js';

export interface PubsubTestEmulator {
  /** host:port */
  host: string;
  /** Started here, not given by PUBSUB_EMULATOR_HOST. */
  local: boolean;
}

export interface PubsubEmulatorHandle {
  require(ctx: { skip: (note?: string) => never }): PubsubTestEmulator;
  readonly emulator: PubsubTestEmulator | null;
}

export function usePubsubEmulator(): PubsubEmulatorHandle {
  const state: { emulator: PubsubTestEmulator | null; reason: string | null } = { emulator: null, reason: null };
  const stateFile = join(tmpdir(), 'brokerdeck-pubsub', `test-${process.pid}-${Date.now()}.json`);
  let started = false;
  const stop = () => {
    if (started) stopSync(pubsubScript, stateFile);
    started = false;
  };

  beforeAll(async () => {
    const given = process.env.PUBSUB_EMULATOR_HOST;
    if (given) {
      state.emulator = { host: given, local: false };
      return;
    }
    const r = await startPubsubEmulator(stateFile);
    if ('reason' in r) {
      state.reason = `no Pub/Sub emulator: ${r.reason}`;
      // Said once in the run's output too: the reporter shows skipped tests without their note.
      console.warn(`[pubsub] ${state.reason}`);
      if (process.env.PUBSUB_REQUIRED === '1') throw new Error(state.reason);
      return;
    }
    const host = r.host;
    started = true;
    // A test run that dies must not leave a JVM behind.
    process.once('exit', stop);
    state.emulator = { host, local: true };
  }, 200_000);

  afterAll(async () => {
    if (started) {
      await stopPubsubEmulator(stateFile);
      started = false;
      process.removeListener('exit', stop);
    }
  }, 60_000);

  return {
    require(ctx) {
      if (!state.emulator) ctx.skip(state.reason ?? 'no Pub/Sub emulator');
      return state.emulator!;
    },
    get emulator() {
      return state.emulator;
    },
  };
}
