// Two projects: fast unit tests, and end-to-end tests that drive real pcscd and OpenSC. Both get a
// real PostgreSQL cluster from their setup.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
          globalSetup: ['test/postgres-setup.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts', 'test/postgres-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // The tests share one pcscd and its vpcd ports: run the files one after another.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
