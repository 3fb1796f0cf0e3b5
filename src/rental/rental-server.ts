// The Rental Server of patent 003 [0046], [0058], [0062] (DESIGN.md "Software rental"): one per machine, it owns the
// card and the audit trail. Every Write runs alone ([0058]: it "synchronizes access to the smart card and the audit
// trail"): requests are queued and run one at a time, each as one exclusive card transaction. A Write is journaled
// so that no crash leaves a hole ([0062]):
//   (1) in the card transaction, after GET COUNTER: the intent {nonce, text, counter} to the journal, fsynced;
//   (2) SIGN AND INCREMENT, GET COUNTER; the transaction ends;
//   (3) the card's answer to the journal, fsynced;  (4) the record to the primary trail, fsynced;
//   (5) to the backup trail, fsynced;  (6) the journal entry cleared;  (7) the answer to the program.
// After a crash, before serving: an answered entry missing from a trail is appended; an intent whose counter the
// card has since passed by one lost its signature, and a card-signed bridge record "skipped E E" names the value
// (validate-trail.ts accepts a bridge naming exactly the gap; thresholds charge it as worst-case use); an intent the
// card never signed is dropped (no program was told it was written). A gap the server did not cause (the card's
// counter beyond the trail's end) is reported once and left for `vsc rental bridge`: until then programs refuse
// the trail (stale, or a hole once a record follows). The server needs no keyfile: programs validate ([0058]).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { signedDigest, type VscKeyMode } from '../apdu/index.js';
import { ed25519Verifier } from '../crypto/index.js';
import { crashPoint } from '../fault-injection/index.js';
import { acquireFileLock, ensurePrivateDirectory, type FileLock } from '../files/index.js';
import { NONCE_LENGTH, recordHash, verifyRecord, type AuditRecord } from './audit-record.js';
import type { BridgeAnswer, CounterRange, HelloAnswer, RentalCardIdentity, StatusAnswer, WriteAnswer } from './rental-answers.js';
import { readCardIdentity, type RentalCardAccess, type RentalCardSession } from './rental-card-access.js';
import { RentalError } from './rental-error.js';
import { RentalJournal } from './rental-journal.js';
import { RENTAL_PROTOCOL_VERSION } from './rental-protocol.js';
import { TrailPair } from './trail-pair.js';
import { formatUsageText } from './usage-text.js';

export const RENTAL_LOCK_FILE_NAME = 'server.lock';

export interface RentalServerOptions {
  readonly card: RentalCardAccess;
  /** The trail's directory: DIR/trail.jsonl, DIR/journal, made 0700. */
  readonly directory: string;
  /** A backup trail's directory on another medium ([0062]). */
  readonly backupDirectory?: string;
  /** The card's SIGN AND INCREMENT key mode, when the card does not show it. */
  readonly keyMode?: VscKeyMode;
  /** Repairs and warnings, one line each (the CLI prints them to stderr). */
  readonly log?: (line: string) => void;
}

function causeText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A card failure as the program sees it; a RentalError from below keeps its reason. */
function cardFailure(what: string, error: unknown): RentalError {
  if (error instanceof RentalError) return error;
  return new RentalError('card', `${what}: ${causeText(error)}`, { cause: error });
}

/** What a Write signs: a text fixed by the caller, or one made from the counter the card shows (bridges). */
type TextOf = (counter: bigint) => string | undefined;

/** A record the card signed with a text of its own choosing (an extension's command, such as a license use). */
export interface CardSignedRecord {
  readonly counter: bigint;
  readonly signature: Uint8Array;
  readonly text: string;
}

/**
 * An extension's command that makes the card sign a record: run inside the Write's card transaction with the nonce
 * the server drew. It may select another applet (the server selects the VSC applet again afterwards). A refusal by
 * the card is returned as `refused`, so the Write knows nothing was signed.
 */
export type CardSigning = (session: RentalCardSession, nonce: Uint8Array) => Promise<CardSignedRecord | { readonly refused: Error }>;

/** Carries a card's refusal out of the transaction unwrapped: it is the extension's answer, not a card failure. */
class CardRefusal {
  constructor(readonly refusal: Error) {}
}

/** How a Write gets its signature: SIGN AND INCREMENT of a text known first, or a card command that signs its own. */
type Signing = { readonly kind: 'text'; readonly textOf: TextOf } | { readonly kind: 'card'; readonly describe: string; readonly sign: CardSigning };

export class RentalServer {
  #tail: Promise<void> = Promise.resolve();
  #closing = false;
  /** The counter the trail's next record carries; undefined while the trail is empty (its offset is the keyfile's). */
  #next: bigint | undefined;
  /** A gap the server did not cause, while it is still open at the trail's end. */
  #gap: CounterRange | null = null;
  #failed: RentalError | undefined;
  /** The card's own key, imported once: a signature that does not verify is never appended. */
  readonly #verify: (message: Uint8Array, signature: Uint8Array) => boolean;

  private constructor(
    readonly card: RentalCardIdentity,
    private readonly access: RentalCardAccess,
    private readonly trails: TrailPair,
    private readonly journal: RentalJournal,
    private readonly locks: readonly FileLock[],
    private readonly log: (line: string) => void,
  ) {
    const last = trails.last;
    this.#next = last === undefined ? undefined : last.counter + 1n;
    this.#verify = ed25519Verifier(card.publicKey);
  }

  /**
   * Locks the trail directories, opens the journal, repairs and reconciles the trails, reads the card, replays or
   * resolves the journal and reports a gap. Refuses (RentalError) what it must not repair.
   */
  static async open(options: RentalServerOptions): Promise<RentalServer> {
    const log = options.log ?? (() => undefined);
    const locks: FileLock[] = [];
    let journal: RentalJournal | undefined;
    let trails: TrailPair | undefined;
    try {
      for (const directory of [options.directory, ...(options.backupDirectory === undefined ? [] : [options.backupDirectory])]) {
        // TrailPair makes the directories 0700; the lock comes first so that two servers never repair at once.
        ensurePrivateDirectory(directory);
        locks.push(await acquireFileLock(join(directory, RENTAL_LOCK_FILE_NAME), `the rental trail directory ${directory}`));
      }
      journal = RentalJournal.open(options.directory);
      const entry = journal.entry;
      trails = await TrailPair.open({ directory: options.directory, backupDirectory: options.backupDirectory, journaled: entry?.state === 'answered' ? entry.record : undefined, log });
      const identity = await options.card.transaction((session) => readCardIdentity(session, options.keyMode)).catch((error: unknown) => {
        throw cardFailure(`cannot read the card in ${options.card.description}`, error);
      });
      const server = new RentalServer(identity, options.card, trails, journal, locks, log);
      await server.recover();
      return server;
    } catch (error) {
      trails?.close();
      journal?.close();
      for (const lock of locks) lock.release();
      throw error;
    }
  }

  /** Startup: the trail is this card's, the journal is replayed or resolved, a gap is reported. */
  private async recover(): Promise<void> {
    const last = this.trails.last;
    if (last !== undefined && !verifyRecord(last, this.card)) {
      throw new RentalError('wrong-card', `the last record of ${this.trails.path} (counter ${last.counter}) was not signed by card ${this.card.serial} in ${this.access.description}: this trail belongs to another card`);
    }
    await this.resolveJournal();
    const counter = await this.readCounter();
    if (this.#next !== undefined && counter < this.#next) {
      throw new RentalError('rollback', `the card's counter is ${counter}, but the trail ${this.trails.path} holds records up to counter ${this.#next - 1n}: the card's counter was rolled back or this is another copy of the card`);
    }
    if (this.#next !== undefined && counter > this.#next) this.noteGap({ from: this.#next, to: counter - 1n });
  }

  /** One unit of work at a time ([0058]); refused once the server is stopping. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#closing) throw new RentalError('busy', 'the rental server is stopping: nothing was done');
      return job();
    });
    this.#tail = run.then(() => undefined, () => undefined);
    return run;
  }

  private readCounter(): Promise<bigint> {
    return this.access.transaction(({ client }) => client.counter()).catch((error: unknown) => {
      throw cardFailure(`GET COUNTER failed on the card in ${this.access.description}`, error);
    });
  }

  private noteGap(gap: CounterRange): void {
    if (this.#gap !== null && this.#gap.from === gap.from && this.#gap.to === gap.to) return;
    this.#gap = gap;
    const range = gap.from === gap.to ? `counter ${gap.from}` : `counters ${gap.from}..${gap.to}`;
    this.log(
      `warning: the card's counter is ${gap.to + 1n}, but the trail ${this.trails.path} ends at counter ${gap.from - 1n}: ${range} carry no record ` +
        '(a server-backed card recovered, a dongle epoch change, an old trail restored, or another program signing outside this server). ' +
        'Programs refuse this trail until "vsc rental bridge" writes a card-signed record naming the range, which every program then charges as worst-case usage; ' +
        'bridge it before the next Write, or the gap stays a hole',
    );
  }

  /**
   * The journal's entry after a crash or a failed Write: an answered record is appended where missing; an intent is
   * dropped when the card never signed it, bridged when the card signed it and nothing since, and otherwise left to
   * the gap report.
   */
  private async resolveJournal(): Promise<void> {
    const entry = this.journal.entry;
    if (entry === undefined) return;
    if (entry.state === 'answered') {
      if (!verifyRecord(entry.record, this.card)) throw new RentalError('wrong-card', `the journal's record for counter ${entry.record.counter} was not signed by card ${this.card.serial}: the journal belongs to another card`);
      if (this.trails.replay(entry.record)) this.log(`replayed the record for counter ${entry.record.counter} from the journal into the trail ([0062])`);
      this.journal.clear();
      this.#next = entry.record.counter + 1n;
      return;
    }
    const expected = entry.intent.counter;
    const counter = await this.readCounter();
    if (counter < expected) throw new RentalError('rollback', `the journal holds a Write at counter ${expected}, but the card's counter is ${counter}: the card's counter was rolled back or this is another card`);
    if (counter === expected) {
      // Never signed: no program was told it was written. A bridge that was to be written is written again.
      const bridge = /^skipped (0|[1-9][0-9]*) (0|[1-9][0-9]*)$/.exec(entry.intent.text);
      this.journal.clear();
      if (bridge !== null && BigInt(bridge[1]!) === this.#next && BigInt(bridge[2]!) === expected - 1n) {
        this.log(`writing again the bridge record "${entry.intent.text}" the server died before signing`);
        await this.writeNow(this.newNonce(), { kind: 'text', textOf: () => entry.intent.text }, expected, true);
      }
      return;
    }
    if (counter === expected + 1n && (this.#next === undefined || this.#next === expected)) {
      // The card signed at `expected` and the signature died with the server: name the value in a bridge record.
      const text = formatUsageText({ kind: 'skipped', from: expected, to: expected });
      this.log(`the card signed counter ${expected} but the signature was lost in a crash before it was kept: writing the bridge record "${text}" at counter ${counter}`);
      // The bridge's own intent replaces this one in the journal, so a crash now still knows what was lost.
      await this.writeNow(this.newNonce(), { kind: 'text', textOf: () => text }, counter, true);
      return;
    }
    // The card moved on further, outside this server too: the gap report names the whole range.
    this.journal.clear();
  }

  private newNonce(): Uint8Array {
    return Uint8Array.from(randomBytes(NONCE_LENGTH));
  }

  /**
   * One Write, steps (1)-(6) of the file comment. `textOf` gets the counter the card shows and may decline (nothing
   * is signed). `expect`: sign only at that counter. `bridging`: the Write closes the gap, so it is no gap to report.
   */
  private async writeNow(nonce: Uint8Array, signing: Signing, expect: bigint | undefined, bridging: boolean): Promise<WriteAnswer | undefined> {
    if (this.#failed !== undefined) throw this.#failed;
    let signed: { record: AuditRecord; counterAfter: bigint; answered: bigint } | undefined;
    try {
      signed = await this.access.transaction(async (session) => {
        const { client } = session;
        const counter = await client.counter();
        if (expect !== undefined && counter !== expect) throw new RentalError('counter-moved', `the card's counter is ${counter}, not ${expect}: nothing was signed; read the counter and try again`);
        if (this.#next !== undefined && counter < this.#next) throw new RentalError('rollback', `the card's counter ${counter} is below the trail's next counter ${this.#next}: the card's counter was rolled back; nothing was signed`);
        const text = signing.kind === 'text' ? signing.textOf(counter) : signing.describe;
        if (text === undefined) return undefined;
        if (!bridging && this.#next !== undefined && counter > this.#next) this.noteGap({ from: this.#next, to: counter - 1n });
        this.journal.recordIntent({ nonce, text, counter });
        crashPoint('rental.write.intent-journaled');
        let answer: { counter: bigint; signature: Uint8Array; text: string };
        if (signing.kind === 'text') {
          answer = { ...(await client.signAndIncrement(recordHash(nonce, text), this.card.keyMode)), text };
        } else {
          const result = await signing.sign(session, nonce);
          await client.select();
          if ('refused' in result) {
            // The card signed nothing: the intent goes (were it left, the next Write would find the counter unmoved and drop it).
            this.journal.clear();
            throw new CardRefusal(result.refused);
          }
          answer = result;
        }
        crashPoint('rental.write.signed');
        const counterAfter = await client.counter();
        return { record: { nonce, text: answer.text, counter, signature: answer.signature }, counterAfter, answered: answer.counter };
      });
    } catch (error) {
      if (error instanceof CardRefusal) throw error.refusal;
      throw cardFailure(`the card in ${this.access.description} failed`, error);
    }
    if (signed === undefined) return undefined;
    const { record, counterAfter, answered } = signed;
    // An answer that is not a good signature at the counter shown is not kept: the intent stays, and is resolved
    // (a lost signature, bridged) before the next Write.
    if (answered !== record.counter || counterAfter !== record.counter + 1n) {
      throw new RentalError('counter', `the card showed counter ${record.counter}, signed with ${answered} and then showed ${counterAfter}: its counters disagree`);
    }
    if (!this.#verify(signedDigest(recordHash(record.nonce, record.text), record.counter, this.card.keyMode, this.card.serial), record.signature)) {
      throw new RentalError('wrong-card', `the card's signature at counter ${record.counter} does not verify against its public key`);
    }
    this.journal.recordAnswer(record);
    crashPoint('rental.write.answer-journaled');
    try {
      this.trails.append(record);
    } catch (error) {
      // The record stays journaled and is replayed at the next start; until then nothing more is written.
      this.#failed = error instanceof RentalError ? error : new RentalError('storage', causeText(error), { cause: error });
      throw this.#failed;
    }
    this.journal.clear();
    this.#next = record.counter + 1n;
    this.#gap = null;
    return { record, counterAfter };
  }

  /** Before a Write: what a failed Write left in the journal. */
  private async settle(): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.journal.entry !== undefined) await this.resolveJournal();
  }

  /** [0059] steps [3]-[4] and [9] for a program: signed at the card's counter (or only at `expectCounter`), kept. */
  write(nonce: Uint8Array, text: string, expectCounter?: bigint): Promise<WriteAnswer> {
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) return Promise.reject(new RentalError('input', `expected a ${NONCE_LENGTH}-byte nonce`));
    if (expectCounter !== undefined && (typeof expectCounter !== 'bigint' || expectCounter < 0n || expectCounter >= 1n << 128n)) {
      return Promise.reject(new RentalError('input', 'expected expectCounter as a bigint in 0..2^128-1'));
    }
    try {
      recordHash(nonce, text);
    } catch (error) {
      return Promise.reject(error);
    }
    const copy = nonce.slice();
    return this.enqueue(async () => {
      await this.settle();
      return (await this.writeNow(copy, { kind: 'text', textOf: () => text }, expectCounter, false))!;
    });
  }

  /** `vsc rental bridge`: a card-signed "skipped FROM TO" for the counters the card passed that the trail lacks. */
  bridge(): Promise<BridgeAnswer> {
    return this.enqueue(async () => {
      await this.settle();
      const bridged: { range?: CounterRange } = {};
      const answer = await this.writeNow(this.newNonce(), {
        kind: 'text',
        textOf: (counter) => {
          if (this.#next === undefined || counter <= this.#next) return undefined;
          bridged.range = { from: this.#next, to: counter - 1n };
          return formatUsageText({ kind: 'skipped', ...bridged.range });
        },
      }, undefined, true);
      return answer === undefined || bridged.range === undefined ? { bridged: null } : { bridged: bridged.range, record: answer.record };
    });
  }

  /**
   * A Write whose text the card chooses (an extension's command, such as a license use): journaled, verified against
   * the card's key and kept in the trail like any Write before it resolves. `describe` stands in the journal for the
   * text until the card answers. A refusal by the card is thrown as it came, and nothing was signed.
   */
  cardWrite(describe: string, sign: CardSigning): Promise<WriteAnswer> {
    return this.enqueue(async () => {
      await this.settle();
      return (await this.writeNow(this.newNonce(), { kind: 'card', describe, sign }, undefined, false))!;
    });
  }

  /** Runs `body` in one card transaction, in turn with the Writes (an extension's read of the card). */
  withCard<T>(body: (session: RentalCardSession) => Promise<T>): Promise<T> {
    return this.enqueue(() => this.access.transaction(body));
  }

  counter(): Promise<bigint> {
    return this.enqueue(() => this.readCounter());
  }

  hello(): Promise<HelloAnswer> {
    return this.enqueue(async () => ({ protocol: RENTAL_PROTOCOL_VERSION, card: this.card, trail: this.trails.path, counter: await this.readCounter() }));
  }

  status(): Promise<StatusAnswer> {
    return this.enqueue(async () => {
      const counter = await this.readCounter();
      return { counter, ...this.trails.state(), journal: this.journal.state, gap: this.#gap };
    });
  }

  /** The primary trail's path. */
  get trailPath(): string {
    return this.trails.path;
  }

  get backupPath(): string | undefined {
    return this.trails.backupPath;
  }

  /** Lets the work in progress finish, refuses what was queued behind it (`busy`), and releases the files. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#tail;
    this.trails.close();
    this.journal.close();
    for (const lock of this.locks) lock.release();
  }
}
