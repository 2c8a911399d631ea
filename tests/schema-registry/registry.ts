/**
 * The schema registry of the integration tests: `useSchemaRegistry()` registers
 * hooks that start a fresh Apicurio Registry with tests/schema-registry/registry.mjs
 * (its own state file) and stop it afterwards. When it cannot be had (no Java,
 * no Maven, no network to Maven Central) `require(ctx)` skips with the reason.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { parseLines, runScript, whyUnavailable } from '../servers/control.js';

const script = join(import.meta.dirname, 'registry.mjs');

export interface SchemaRegistryHandle {
  /** The ccompat base URL, or skips the calling test with the reason there is none. */
  require(ctx: { skip: (note?: string) => never }): string;
  /** Stops the registry now (the tests of a registry that went away). */
  stop(): Promise<void>;
}

export function useSchemaRegistry(): SchemaRegistryHandle {
  const stateFile = join(tmpdir(), 'brokerdeck-schema-registry', `test-${process.pid}-${Date.now()}.json`);
  const state: { url: string | null; reason: string | null; started: boolean } = { url: null, reason: null, started: false };
  const stopSync = () => {
    if (state.started) spawnSync(process.execPath, [script, 'stop', '--state', stateFile], { stdio: 'ignore', timeout: 30_000 });
  };
  const stop = async () => {
    if (!state.started) return;
    await runScript(script, ['stop', '--state', stateFile], 60_000);
    state.started = false;
    process.removeListener('exit', stopSync);
  };

  beforeAll(async () => {
    const r = await runScript(script, ['start', '--state', stateFile], 600_000);
    const lines = parseLines(r.stdout);
    if (r.code !== 0 || !lines.SCHEMA_REGISTRY_URL) {
      state.reason = `no schema registry: ${whyUnavailable(r, 'SCHEMA_REGISTRY_UNAVAILABLE')}`;
      console.warn(`[schema-registry] ${state.reason}`);
      await runScript(script, ['stop', '--state', stateFile], 30_000);
      return;
    }
    state.url = lines.SCHEMA_REGISTRY_URL;
    state.started = true;
    process.once('exit', stopSync);
  }, 660_000);

  afterAll(stop, 60_000);

  return {
    require(ctx) {
      if (!state.url) ctx.skip(state.reason ?? 'no schema registry');
      return state.url!;
    },
    stop,
  };
}
