// The restoring service's link to the hub (Wibu 000 P002 §2.1 "This central Web Service knows the Restoring Web
// Services of all licensors"; "CM-Box Backup" §2.10: "the Licensor sends the Serial Number of the CM-Box, for which the
// Backup Sequence was created, to WIBU-SYSTEMS ... for CM-Box Locking Management"; "Each Licensor ... download this list
// of locked CM-Box"). On start and on a timer: every licensor registers its restoring service's URL (signed
// hub-requests.ts), local locks not reported yet are reported, and the central list is downloaded — each sequence
// checked against the authority key this service was given (--hub-key) before it is kept.
import { fromHex } from '../../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../../crypto/index.js';
import { licensorRecord, withLicensorKey, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { centralLockReported, checkCentralSequence, replaceCentralLocks, unreportedLocks } from './issuing-locks.js';
import { signHubLicensorRequest, signHubLockRequest } from './hub-requests.js';

export const DEFAULT_HUB_SYNC_SECONDS = 300;
const TIMEOUT_MS = 15_000;
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

export interface HubLinkOptions {
  /** The hub's base URL (`--hub`). */
  readonly hubUrl: string;
  /** The central authority's Ed25519 public key (`--hub-key`). */
  readonly authorityKey: Uint8Array;
  /** Where the hub reaches this service (`--public-url`): each licensor's restoreUrl. */
  readonly publicUrl: string;
  readonly syncSeconds?: number;
  readonly fetch?: typeof globalThis.fetch;
  /** Told of each step's outcome, for a log line; never of a key or a body. */
  readonly onEvent?: (event: HubLinkEvent) => void;
}

export interface HubLinkEvent {
  readonly step: 'register' | 'report' | 'download';
  readonly ok: boolean;
  readonly detail: string;
}

function baseUrl(text: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text.endsWith('/') ? text : `${text}/`);
  } catch {
    throw new TypeError(`${what}: expected an http or https URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${what}: expected an http or https URL, got ${url.protocol}`);
  return url;
}

export class HubLink {
  readonly authorityKey: Uint8Array;
  readonly #backend: IssuingBackend;
  readonly #hub: URL;
  readonly #publicUrl: string;
  readonly #fetch: typeof globalThis.fetch;
  readonly #tell: (event: HubLinkEvent) => void;
  readonly #syncMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  #reporting: Promise<void> | undefined;
  #reportAgain = false;

  constructor(backend: IssuingBackend, options: HubLinkOptions) {
    if (!(options.authorityKey instanceof Uint8Array) || options.authorityKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new TypeError('expected the hub\'s authority key as 32 bytes');
    this.#backend = backend;
    this.#hub = baseUrl(options.hubUrl, '--hub');
    this.#publicUrl = baseUrl(options.publicUrl, '--public-url').toString().replace(/\/$/, '');
    this.authorityKey = options.authorityKey.slice();
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#tell = options.onEvent ?? (() => undefined);
    const seconds = options.syncSeconds ?? DEFAULT_HUB_SYNC_SECONDS;
    if (!Number.isSafeInteger(seconds) || seconds < 1) throw new TypeError(`expected a sync interval of at least 1 second, got ${String(seconds)}`);
    this.#syncMs = seconds * 1000;
  }

  async #call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const response = await this.#fetch(new URL(path, this.#hub), {
      method, headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, redirect: 'error',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await response.text();
    if (text.length > MAX_ANSWER_BYTES) throw new Error(`the hub answered more than ${MAX_ANSWER_BYTES} bytes`);
    if (!response.ok) {
      const message = /"message":"([^"\\]{1,200})"/.exec(text)?.[1];
      throw new Error(`the hub answered HTTP ${response.status}${message === undefined ? '' : `: ${message}`}`);
    }
    return JSON.parse(text) as unknown;
  }

  /** Registers each licensor of the service with this service's URL. */
  async register(): Promise<void> {
    const rows = await this.#backend.database.db.selectFrom('issuing_licensors').selectAll().orderBy('id').execute();
    for (const licensor of rows.map(licensorRecord)) {
      const body = withLicensorKey(this.#backend, licensor, (key) => signHubLicensorRequest({ name: licensor.name, restoreUrl: this.#publicUrl, time: this.#backend.now() }, key));
      await this.#step('register', `licensor ${licensor.name}`, () => this.#call('POST', 'v1/licensors', body));
    }
  }

  /** Reports the local locks the hub has not taken yet; keeps the sequence of each. */
  async report(): Promise<void> {
    for (const lock of await unreportedLocks(this.#backend)) {
      const licensor = await this.#licensor(lock.licensorId);
      const body = withLicensorKey(this.#backend, licensor, (key) => signHubLockRequest({ serial: lock.serial, time: this.#backend.now() }, key));
      await this.#step('report', `container ${lock.serial}`, async () => {
        const answer = await this.#call('POST', 'v1/locks', body) as { serial?: unknown; lockSequence?: unknown } | null;
        if (answer?.serial !== lock.serial || typeof answer.lockSequence !== 'string') throw new Error('the hub answered something else than {serial, lockSequence}');
        await centralLockReported(this.#backend, lock.licensorId, lock.serial, checkCentralSequence(answer.lockSequence, lock.serial, this.authorityKey));
      });
    }
  }

  /** Downloads the central list and keeps it when every sequence is the authority's lock of its serial. */
  async download(): Promise<void> {
    await this.#step('download', 'central locking list', async () => {
      const answer = await this.#call('GET', 'v1/locks') as { locks?: unknown } | null;
      if (!Array.isArray(answer?.locks)) throw new Error('the hub answered something else than {locks: [...]}');
      const locks = answer.locks.map((entry: unknown) => {
        const { serial, lockSequence } = (entry ?? {}) as { serial?: unknown; lockSequence?: unknown };
        if (typeof serial !== 'string' || typeof lockSequence !== 'string') throw new Error('the hub listed a lock without serial or lockSequence');
        return { serial, lockSequence: checkCentralSequence(lockSequence, serial, this.authorityKey) };
      });
      await replaceCentralLocks(this.#backend, locks);
      return `${locks.length} locks`;
    });
  }

  /** One round: register, report, download. Never throws (each step tells its outcome); rounds do not overlap. */
  sync(): Promise<void> {
    this.#running ??= (async () => {
      try {
        await this.register();
        await this.report();
        await this.download();
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /**
   * Reports new locks now (after a restore or a reactivation locked a container), without waiting for the timer. One
   * report runs at a time: locks that arrive meanwhile go with one more round after it, so a burst of restores makes
   * a round or two, not one round per restore over every unreported lock.
   */
  reportSoon(): void {
    if (this.#reporting !== undefined) {
      this.#reportAgain = true;
      return;
    }
    this.#reporting = (async () => {
      do {
        this.#reportAgain = false;
        await this.report().catch(() => undefined);
      } while (this.#reportAgain);
    })().finally(() => {
      this.#reporting = undefined;
    });
  }

  /** A first round, then one every syncSeconds. */
  async start(): Promise<void> {
    await this.sync();
    this.#timer = setInterval(() => void this.sync(), this.#syncMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  async #licensor(id: number): Promise<LicensorRecord> {
    const row = await this.#backend.database.db.selectFrom('issuing_licensors').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return licensorRecord(row);
  }

  async #step(step: HubLinkEvent['step'], what: string, work: () => Promise<unknown>): Promise<void> {
    try {
      const outcome = await work();
      this.#tell({ step, ok: true, detail: typeof outcome === 'string' ? `${what}: ${outcome}` : what });
    } catch (error) {
      this.#tell({ step, ok: false, detail: `${what}: ${(error as Error).message}` });
    }
  }
}

/** The hub key as `--hub-key` gives it: 64 hex digits. */
export function parseHubKey(text: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(text)) throw new TypeError('expected the hub\'s authority key as 64 lowercase hex digits');
  return fromHex(text);
}
