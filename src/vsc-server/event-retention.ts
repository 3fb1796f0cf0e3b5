// Retention of the events table (issue 13 "Bounded server"): events older than the retention setting
// are deleted at start and then every hour, in batches, on SQLite and PostgreSQL alike. The same
// round forgets wrong-password buckets idle for a day (owner-authentication.ts), whatever the setting.
import type { VscDatabase } from './database.js';
import { pruneStaleFailureBuckets } from './owner-authentication.js';

export const DAY_MS = 24 * 3600 * 1000;
/** How often a running server prunes. */
export const PRUNE_INTERVAL_MS = 3600 * 1000;
/**
 * Rows per DELETE: a short transaction, so card operations (which append events) wait for one batch
 * at most, never for a year of history.
 */
export const PRUNE_BATCH = 5000;

/** Deletes the events with `at` before `before` (ms since the epoch); returns how many. */
export async function pruneEventsBefore(database: VscDatabase, before: number, batch = PRUNE_BATCH): Promise<number> {
  let deleted = 0;
  for (;;) {
    // A subquery by id: DELETE ... LIMIT is not portable (PostgreSQL has none, SQLite only when built with it).
    const result = await database.db
      .deleteFrom('events')
      .where('id', 'in', (eb) => eb.selectFrom('events').select('id').where('at', '<', before).limit(batch))
      .executeTakeFirst();
    const count = Number(result.numDeletedRows);
    deleted += count;
    if (count < batch) return deleted;
  }
}

export interface EventRetentionOptions {
  /** Days to keep; 0 keeps every event (idle failure buckets are still forgotten). */
  readonly retentionDays: number;
  readonly now?: () => number;
  readonly intervalMs?: number;
  /** A prune that failed (database down): the next one tries again. */
  readonly onError?: (error: unknown) => void;
  /** After each prune, with the number of events deleted. */
  readonly onPruned?: (deleted: number) => void;
}

export interface EventRetention {
  /** Resolves after the first prune (the one at start) finished or failed. */
  readonly started: Promise<void>;
  /** Stops the timer and waits for a prune under way. */
  stop(): Promise<void>;
}

/** Prunes now, then every `intervalMs`, until stopped. One prune at a time. */
export function startEventRetention(database: VscDatabase, options: EventRetentionOptions): EventRetention {
  const { retentionDays, now = Date.now, intervalMs = PRUNE_INTERVAL_MS, onError = () => undefined, onPruned = () => undefined } = options;
  let running: Promise<void> = Promise.resolve();
  const prune = (): Promise<void> => {
    running = running
      .then(async () => {
        await pruneStaleFailureBuckets(database.db, now() - DAY_MS);
        if (retentionDays > 0) onPruned(await pruneEventsBefore(database, now() - retentionDays * DAY_MS));
      })
      .catch((error: unknown) => {
        try {
          onError(error);
        } catch {
          // a broken error hook must not stop the pruning
        }
      });
    return running;
  };
  const started = prune();
  const timer = setInterval(() => void prune(), intervalMs);
  timer.unref();
  return Object.freeze({
    started,
    async stop() {
      clearInterval(timer);
      await running;
    },
  });
}
