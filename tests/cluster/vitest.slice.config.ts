/** The short slice of the cluster tests that `npm test` runs: see vitest.config.ts. */
import { mergeConfig } from 'vitest/config';
import full from './vitest.config.js';

export default mergeConfig(full, { test: { provide: { clusterSlice: true } } });
