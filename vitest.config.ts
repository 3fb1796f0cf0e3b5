// Three projects: `unit` (no PostgreSQL, no pcscd), `db` (the test files that need a real PostgreSQL: they inject
// 'postgresUrl') and `e2e` (real pcscd, vpcd, OpenSC, SoftHSM2, PostgreSQL). Every project first makes sure the compiled
// CLI in dist/ is current (test/build-setup.ts), since the tests spawn `vsc` as a user runs it.
import { defineConfig } from 'vitest/config';

/** After each file, no `vsc` process it started is left running (a failed test's, too). */
const setupFiles = ['test/support/kill-all-setup.ts'];

/** Test files that need PostgreSQL (they call inject('postgresUrl')); the cluster is started only for them and e2e. */
const DB_TESTS = ['test/vsc-server/card-store.test.ts', 'test/vsc-server/commit-groups.test.ts', 'test/vsc-server/prepared-query.test.ts', 'test/vsc-server/database.test.ts', 'test/vsc-server/observability.test.ts', 'test/vsc-server/event-retention.test.ts', 'test/license/issuing/issuing-postgres.test.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', ...DB_TESTS],
          globalSetup: ['test/build-setup.ts'],
          setupFiles,
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'db',
          include: DB_TESTS,
          globalSetup: ['test/build-setup.ts', 'test/postgres-setup.ts'],
          setupFiles,
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/build-setup.ts', 'test/e2e/global-setup.ts', 'test/postgres-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          setupFiles,
          // The tests share one pcscd and its vpcd ports: run the files one after another, in one worker. A pool of
          // its own (threads; unit and db use forks) lets vitest run it alongside the unit and db files, not after them.
          pool: 'threads',
          poolOptions: { threads: { singleThread: true } },
        },
      },
    ],
  },
});
