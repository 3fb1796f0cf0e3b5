// The restore jobs a hub runs (Wibu 000 "CM-Box Backup" §2.5 "Restore Process is Single Action for User": one request,
// all licensors asked at once): kept in memory for an hour, each named only by 16 random bytes (hex) that the customer
// holds; each item's status changes as its licensor answers, so polling the job shows the progress.
import { randomBytes } from 'node:crypto';
import { toHex } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';

export const DEFAULT_JOB_LIFETIME_SECONDS = 3600;
/** Jobs one hub keeps at once: a flood of jobs is refused (429) instead of filling the memory. */
export const MAX_LIVE_JOBS = 1000;
export const JOB_ID_PATTERN = '^[0-9a-f]{32}$';

export type JobItemStatus = 'pending' | 'restored' | 'not-restorable' | 'refused' | 'approval';

/** One firm item of the backup, and what its licensor answered. */
export interface JobItem {
  readonly licensorKey: string;
  readonly firmCode: number;
  name?: string;
  status: JobItemStatus;
  update?: string;
  digest?: string;
  binding?: string;
  /** The licensor's refusal reason (a LicenseReason), or "unavailable" when its service did not answer. */
  reason?: string;
  message?: string;
  degreePercent?: number;
  restored?: number[];
  skipped?: number[];
}

export interface RestoreJob {
  readonly id: string;
  readonly createdAt: number;
  /** The target container, for the answer file's name. */
  readonly targetSerial: string;
  readonly items: JobItem[];
  state: 'running' | 'done';
}

/** What GET /v1/restore-jobs/:id answers. */
export interface RestoreJobView {
  readonly state: 'running' | 'done';
  readonly items: ReadonlyArray<Readonly<JobItem>>;
}

export class RestoreJobStore {
  readonly #jobs = new Map<string, RestoreJob>();
  readonly #now: () => number;
  readonly #lifetime: number;

  constructor(options: { readonly now: () => number; readonly lifetimeSeconds?: number }) {
    this.#now = options.now;
    this.#lifetime = options.lifetimeSeconds ?? DEFAULT_JOB_LIFETIME_SECONDS;
  }

  #sweep(): void {
    const oldest = this.#now() - this.#lifetime;
    for (const [id, job] of this.#jobs) if (job.createdAt <= oldest && job.state === 'done') this.#jobs.delete(id);
  }

  /** A new running job of `items` (429 'limit' when MAX_LIVE_JOBS run or wait to be fetched). */
  create(targetSerial: string, items: JobItem[]): RestoreJob {
    this.#sweep();
    if (this.#jobs.size >= MAX_LIVE_JOBS) throw new LicenseError('limit', `the hub holds ${MAX_LIVE_JOBS} restore jobs: try again later`);
    const job: RestoreJob = { id: toHex(Uint8Array.from(randomBytes(16))), createdAt: this.#now(), targetSerial, items, state: 'running' };
    this.#jobs.set(job.id, job);
    return job;
  }

  /** The job, or undefined when it is unknown or older than its lifetime. */
  get(id: string): RestoreJob | undefined {
    this.#sweep();
    return this.#jobs.get(id);
  }

  get size(): number {
    return this.#jobs.size;
  }
}

/** The job as the customer sees it: a copy, with only the fields each item has. */
export function jobView(job: RestoreJob): RestoreJobView {
  return { state: job.state, items: job.items.map((item) => Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined)) as unknown as JobItem) };
}
