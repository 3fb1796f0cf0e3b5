// The card store's records: the card's states and operations, what a client uploads or is granted,
// what an administrator sees, and the column sets of the `cards` table each state leaves (schema.sql).
import { randomBytes } from 'node:crypto';
import { ExitCode, VscError } from '../errors/index.js';
import { sha256 } from '../crypto/index.js';
import { SERIAL_PATTERN } from '../vsc-protocol/index.js';
import type { CardKind, CardsTable } from './database.js';

export type CardState = CardsTable['state'];
/** `sign`: a server-held card's SIGN AND INCREMENT, run by this server (server-held-signing.ts). */
export type CardOperation = 'enroll' | 'insert' | 'remove' | 'recover' | 'destroy' | 'replace' | 'copy' | 'extend' | 'sign';

export interface CardSummary {
  readonly serial: string;
  readonly state: CardState;
  /** Whose key signs SIGN AND INCREMENT: the owner's machine's ('software') or this server's ('server-held'). */
  readonly kind: CardKind;
  readonly enrolled: boolean;
  /** Whether a failure bucket of the card has reached MAX_BUCKET_FAILURES. */
  readonly blocked: boolean;
  /** Wrong passwords counted now, over all the card's buckets. */
  readonly authFailures: number;
  readonly sealedVersion: bigint;
  readonly counterWindow: readonly [bigint, bigint] | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface CardEvent {
  readonly id: number;
  readonly serial: string;
  readonly at: Date;
  readonly operation: string;
  readonly outcome: string;
  readonly fromState: string | null;
  readonly toState: string | null;
  readonly detail: string | null;
  /** How many times it happened: refusals of one kind are counted in one row per period. */
  readonly count: number;
}

/** The holder of an in-use card: the machine recorded at insert, and the process that inserted it. */
export interface HolderProof {
  readonly muk: Uint8Array;
  readonly holderHash: Uint8Array;
}

/** What remove uploads. */
export interface Upload {
  readonly sealed: Uint8Array;
  readonly sealedVersion: bigint;
  /** Undefined: the whole granted window counts as used. */
  readonly nextCounter?: bigint;
}

export interface Enrollment {
  readonly kdfSalt: Uint8Array;
  readonly kdfMemoryKiB: number;
  readonly kdfIterations: number;
  readonly kdfParallelism: number;
  readonly authVerifier: Uint8Array;
  readonly sealed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface InsertGrant {
  readonly cardId: Uint8Array;
  readonly sealed: Uint8Array;
  readonly sealedVersion: bigint;
  /** A server-held card's is empty: [next, next), the counter value the server signs with next. */
  readonly counterWindow: readonly [bigint, bigint];
  /** A server-held card: the server's attestation of its key, when the server has an attestation key. */
  readonly attestation?: Uint8Array;
}

/** What a server-held card's SIGN AND INCREMENT answers: the counter value used and the signature. */
export interface HeldSignature {
  readonly counter: bigint;
  readonly signature: Uint8Array;
}

export const hash = (bytes: Uint8Array): Uint8Array => sha256(bytes);
/** 192 random bits, base64url; never starting with '-', which a command line would take for an option. */
export function newEnrollmentToken(): string {
  for (;;) {
    const token = randomBytes(24).toString('base64url');
    if (/^[A-Za-z0-9]/.test(token)) return token;
  }
}
/** Columns of a card no machine holds: no MUK, no holder secret, no counter window. */
export const NO_HOLDER = { muk: null, holder_hash: null, window_start: null, window_end: null } as const;
/** Columns of a new card: nobody holds it, nobody removed it. */
export const IDLE = { ...NO_HOLDER, last_holder_hash: null } as const;
/** Columns of a destroyed card: no holder, no window, no sealed information, no server-held seed. */
export const DESTROYED = { state: 'destroyed', ...IDLE, sealed: null, held_seed: null } as const;
export const toBigInt = (value: number | string | bigint): bigint => BigInt(value);
/** Drivers hand back Buffers (views into pools); callers get plain Uint8Array copies. */
export const asBytes = (value: Uint8Array): Uint8Array => Uint8Array.from(value);

/** What the failure buckets say of one card. */
export interface FailureCounts {
  readonly total: number;
  readonly blocked: boolean;
}

export function summarise(row: CardsTable, failures: FailureCounts = { total: 0, blocked: false }): CardSummary {
  return Object.freeze({
    serial: row.serial,
    state: row.state,
    kind: row.kind ?? 'software',
    enrolled: row.enrolled === 1,
    blocked: failures.blocked,
    authFailures: failures.total,
    sealedVersion: toBigInt(row.sealed_version),
    counterWindow: row.window_start === null || row.window_end === null ? null : ([BigInt(row.window_start), BigInt(row.window_end)] as const),
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  });
}

export function checkSerial(serial: string): void {
  if (!SERIAL_PATTERN.test(serial)) {
    throw new VscError('card.serial', `expected a serial of 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(serial.slice(0, 80))}`, { exitCode: ExitCode.usage });
  }
}
