// The SDK a rented program calls (patent 003 [0063]: the "challenge means" that "instructs the remainder of the
// program concerning how to operate depending upon the results of the Write and ValidateTrail routines"):
//
//   const rental = await Rental.open({ keyfile: 'wp.keyfile', vendorKey: VENDOR_KEY, socket });
//   if ((await rental.charge('interval')).allowed) { ...full program... } else { ...the vendor's limited mode... }
//
// Open checks the keyfile with the vendor key built into the program ([0070], [0073]). check() runs ValidateTrail
// ([0060]) through the rental server and evaluates the keyfile's thresholds on the program's usage ([0049]);
// charge() checks first and, when allowed, writes the record of the use that begins ([0049]: "creates a new log
// record ... and then continues executing"). Every failure (a missing server, a refused trail, a used-up threshold,
// a bad keyfile) is a denied decision with its reason: the program drops to its limited mode (claim 6) and never
// crashes. Only a programming mistake (bad options) throws.
import { readFile } from 'node:fs/promises';
import type { VscKeyMode } from '../apdu/index.js';
import { toHex, fromHex } from '../bytes/index.js';
import { UsageError, VscError } from '../errors/index.js';
import type { AuditRecord, TrustRoot } from './audit-record.js';
import { verifyKeyfile, type Keyfile } from './rental-keyfile.js';
import { RentalError } from './rental-error.js';
import { validateThroughServer, writeThroughServer, type RentalServerLink } from './program-trail.js';
import { evaluateSummary, summariseUsage, type ThresholdEvaluation } from './thresholds.js';
import { formatUsageText, localTime, usageBinding, type UsageBinding, type UsageEntry, type UsageSummary } from './usage-text.js';

/** What the rental server says about itself and its card ("hello"). */
export interface RentalServerInfo {
  readonly card: { readonly serial: string; readonly publicKey: Uint8Array; readonly keyMode: VscKeyMode };
  /** The trail file the server appends to: the program reads it itself. */
  readonly trail: string;
}

/** A connection to the rental server (RentalClient), as the SDK uses it. */
export interface RentalConnection extends RentalServerLink {
  hello(): Promise<RentalServerInfo>;
  close(): void | Promise<void>;
}

/** Where the program starts validating and counting ([0094], [0095]). */
export interface ValidationStart {
  readonly offset: bigint;
  /** The attested usage below `offset`, if a validator record vouches for it. */
  readonly summary: UsageSummary | undefined;
  /** The trail's records from at or before `offset`, in order. */
  records(): AsyncIterable<readonly AuditRecord[]>;
}

export type DenialReason = 'keyfile' | 'server' | 'wrong-card' | 'trail' | 'threshold' | 'unchecked' | 'closed';

export type RentalDecision =
  | {
    readonly allowed: true;
    readonly reason: string;
    /** The program's usage after the check (and after the charged use). */
    readonly usage: UsageSummary;
    readonly thresholds: readonly ThresholdEvaluation[];
    readonly checkedAt: Date;
  }
  | {
    readonly allowed: false;
    readonly denial: DenialReason;
    /** One line: why, for the program to show. */
    readonly reason: string;
    /** The machine-readable code of the error behind it (`rental.stale`, `keyfile.signature`), if any. */
    readonly code: string | undefined;
    readonly checkedAt: Date;
  };

/** One use of the program ([0047], [0049], [0103]). */
export type RentalUse = 'interval' | 'execution' | { readonly minutes: number; readonly at?: Date };

export interface RentalOpenOptions {
  /** The keyfile: a path or its bytes. */
  readonly keyfile: string | Uint8Array;
  /** The vendor's Ed25519 public key, built into the program (32 bytes or 64 hex digits). */
  readonly vendorKey: Uint8Array | string;
  /** The program's name: a keyfile for another program is refused. */
  readonly program?: string;
  /** The rental server's socket (default: the per-user path `vsc rental serve` uses). */
  readonly socket?: string;
  /** Connects to the rental server; the default is RentalClient. */
  readonly connect?: (socket: string | undefined) => Promise<RentalConnection>;
  /** Where validation starts: by default the last validator record a service in the keyfile attested ([0094]). */
  readonly start?: (keyfile: Keyfile, binding: UsageBinding, trailPath: string) => Promise<ValidationStart>;
  /** The clock thresholds are checked by (default: now). */
  readonly now?: () => Date;
}

function denied(denial: DenialReason, error: unknown, now: Date): RentalDecision {
  const reason = error instanceof Error ? error.message : String(error);
  return { allowed: false, denial, reason: reason.split('\n')[0]!, code: error instanceof VscError ? error.code : undefined, checkedAt: now };
}

function denialOf(error: unknown): DenialReason {
  if (error instanceof RentalError) {
    if (error.reason === 'wrong-card') return 'wrong-card';
    if (error.reason === 'card' || error.reason === 'storage' || (error.reason as string) === 'busy') return 'server';
    return 'trail';
  }
  return 'server';
}

function vendorKeyBytes(key: Uint8Array | string): Uint8Array {
  if (key instanceof Uint8Array && key.length === 32) return key;
  if (typeof key === 'string' && /^[0-9a-f]{64}$/.test(key)) return fromHex(key);
  throw new UsageError('Rental.open: expected vendorKey as 32 bytes or 64 lowercase hex digits');
}

async function defaultConnect(socket: string | undefined): Promise<RentalConnection> {
  const { RentalClient } = await import('./rental-client.js');
  return RentalClient.connect(socket);
}

/** [0094]: from the program's last attested validator record, else the keyfile's offset (validation-start.ts). */
async function lastValidatorRecord(keyfile: Keyfile, _binding: UsageBinding, trailPath: string): Promise<ValidationStart> {
  const { findValidationStart } = await import('./validation-start.js');
  return findValidationStart(keyfile, trailPath);
}

/** A rented program's license to run: open once, then check() or charge() as the program goes. */
export class Rental {
  #decision: RentalDecision;
  #connection: RentalConnection | undefined;
  #meter: NodeJS.Timeout | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    readonly keyfile: Keyfile | undefined,
    private readonly binding: UsageBinding | undefined,
    private readonly options: RentalOpenOptions,
    decision: RentalDecision,
  ) {
    this.#decision = decision;
  }

  /**
   * Checks the keyfile with the vendor key. Writes nothing: the rental is `unchecked` (limited) until the program's
   * first check() or charge(). A bad keyfile gives a Rental whose every decision is the keyfile's denial.
   */
  static async open(options: RentalOpenOptions): Promise<Rental> {
    if (typeof options !== 'object' || options === null) throw new UsageError('Rental.open: expected options { keyfile, vendorKey }');
    const vendorKey = vendorKeyBytes(options.vendorKey);
    const now = (options.now ?? (() => new Date()))();
    let keyfile: Keyfile;
    try {
      const bytes = typeof options.keyfile === 'string' ? new Uint8Array(await readFile(options.keyfile)) : options.keyfile;
      keyfile = verifyKeyfile(bytes, vendorKey);
      if (options.program !== undefined && keyfile.program !== options.program) {
        throw new VscError('keyfile.program', `the keyfile is for program ${keyfile.program}, not ${options.program}`);
      }
    } catch (error) {
      return new Rental(undefined, undefined, options, denied('keyfile', error, now));
    }
    return new Rental(keyfile, usageBinding(keyfile.program, keyfile.card.publicKey), options, denied('unchecked', 'not checked yet: call check() or charge()', now));
  }

  /** The last decision. */
  get decision(): RentalDecision {
    return this.#decision;
  }

  /** Whether the program must run in its limited mode (claim 6). */
  get limited(): boolean {
    return !this.#decision.allowed;
  }

  /** [0072]: whether an access right of the keyfile switches this function on (and the rental is allowed). */
  allows(right: string): boolean {
    return this.#decision.allowed && this.keyfile !== undefined && this.keyfile.rights.includes(right);
  }

  /** ValidateTrail and the thresholds, without charging a use. */
  check(): Promise<RentalDecision> {
    return this.#serialised(() => this.#check(undefined));
  }

  /** [0049]: checks, then records the use that begins; denied means the use must not begin. */
  charge(use: RentalUse): Promise<RentalDecision> {
    return this.#serialised(() => this.#check(use));
  }

  /** Charges an interval now and every 15 minutes ([0049]) until close(); decisions arrive through `onDecision`. */
  startMeter(onDecision: (decision: RentalDecision) => void = () => undefined, everyMs = 15 * 60_000): void {
    if (this.#meter !== undefined) return;
    const tick = () => void this.charge('interval').then(onDecision, () => undefined);
    tick();
    this.#meter = setInterval(tick, everyMs);
    this.#meter.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#meter !== undefined) clearInterval(this.#meter);
    this.#meter = undefined;
    await this.#queue.catch(() => undefined);
    const connection = this.#connection;
    this.#connection = undefined;
    this.#decision = denied('closed', new VscError('rental.closed', 'the rental was closed'), this.#now());
    if (connection !== undefined) await connection.close();
  }

  #now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }

  #serialised(run: () => Promise<RentalDecision>): Promise<RentalDecision> {
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #connected(): Promise<{ connection: RentalConnection; info: RentalServerInfo }> {
    const fresh = this.#connection === undefined;
    const connection = this.#connection ?? await (this.options.connect ?? defaultConnect)(this.options.socket);
    this.#connection = connection;
    try {
      return { connection, info: await connection.hello() };
    } catch (error) {
      // A broken connection is dropped, and the next check connects again.
      this.#connection = undefined;
      await Promise.resolve(connection.close()).catch(() => undefined);
      if (!fresh) return this.#connected();
      throw error;
    }
  }

  async #check(use: RentalUse | undefined): Promise<RentalDecision> {
    const keyfile = this.keyfile;
    const binding = this.binding;
    const now = this.#now();
    if (keyfile === undefined || binding === undefined || this.#closed) return this.#decision; // the keyfile's or close()'s denial stands
    const useText = use === undefined ? undefined : this.#useText(binding, use, now);
    let stage: DenialReason = 'server';
    try {
      const { connection, info } = await this.#connected();
      const trustRoot: TrustRoot = { publicKey: keyfile.card.publicKey, serial: keyfile.card.serial, keyMode: keyfile.card.keyMode };
      if (info.card.serial !== keyfile.card.serial || toHex(info.card.publicKey) !== toHex(keyfile.card.publicKey)) {
        stage = 'wrong-card';
        throw new RentalError('wrong-card', `the rental server serves card ${info.card.serial}, but the keyfile is for card ${keyfile.card.serial}`);
      }
      stage = 'trail';
      const start = await (this.options.start ?? lastValidatorRecord)(keyfile, binding, info.trail);
      const entries: UsageEntry[] = [];
      const own = `${binding.program} `;
      const records = async function* (): AsyncIterable<readonly AuditRecord[]> {
        for await (const batch of start.records()) {
          for (const record of batch) {
            if (record.counter >= start.offset && (record.text.startsWith(own) || record.text.startsWith('skipped '))) entries.push({ text: record.text, counter: record.counter });
          }
          yield batch;
        }
      };
      await validateThroughServer({
        link: connection, trustRoot, offset: start.offset, records,
        text: (counter) => formatUsageText({ ...binding, kind: 'validated', counter, summary: undefined, attestation: undefined }),
      });
      const usage = summariseUsage(entries, binding, start.summary === undefined ? { from: start.offset } : { base: start.summary });
      const thresholds = keyfile.thresholds.map((spec) => evaluateSummary(spec, usage, { now, auditSince: new Date(keyfile.issuedAt) }));
      const refused = thresholds.find((evaluation) => !evaluation.allowed);
      if (refused !== undefined) {
        this.#decision = { allowed: false, denial: 'threshold', reason: refused.reason, code: 'rental.threshold', checkedAt: now };
        return this.#decision;
      }
      let after = usage;
      if (useText !== undefined) {
        stage = 'server';
        const record = await writeThroughServer(connection, useText, trustRoot);
        after = summariseUsage([{ text: record.text, counter: record.counter }], binding, { base: { ...usage, next: record.counter } });
      }
      const reason = thresholds.length === 0 ? 'allowed: the trail is valid and the keyfile sets no threshold' : thresholds.map((evaluation) => evaluation.reason).join('; ');
      this.#decision = { allowed: true, reason, usage: after, thresholds, checkedAt: now };
    } catch (error) {
      if (error instanceof UsageError) throw error;
      this.#decision = denied(error instanceof RentalError ? denialOf(error) : stage, error, now);
    }
    return this.#decision;
  }

  /** The text of the use's record; a use the grammar cannot say is the caller's mistake (UsageError). */
  #useText(binding: UsageBinding, use: RentalUse, now: Date): string {
    if (use === 'interval') return formatUsageText({ ...binding, kind: 'interval' });
    if (use === 'execution') return formatUsageText({ ...binding, kind: 'execution' });
    if (typeof use !== 'object' || use === null) throw new UsageError('charge: expected "interval", "execution" or { minutes, at? }');
    try {
      return formatUsageText({ ...binding, kind: 'units', minutes: use.minutes, at: localTime(use.at ?? now) });
    } catch (error) {
      throw new UsageError(`charge: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
