import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['tests/unit/**/*.test.ts', 'tests/integration/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // A test waits for a condition, not for a moment: expect.poll's default of 1 s is
    // too short for a machine under load, so it waits up to 30 s unless a test says otherwise.
    expect: { poll: { timeout: 30_000 } },
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
