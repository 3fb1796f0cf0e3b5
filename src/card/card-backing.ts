// What backs a running card (DESIGN.md "What backs a running card"; patent 004 [0035]-[0060] for the
// server, claim 10 and [0104]-[0110] for a dongle): the one interface between the card program and
// where its protected information and counter live. The card OS, the applets, the reader and the
// encrypted memory are the same whatever backs the card.
import type { SignAndIncrementResult, VscKeyMode } from '../apdu/index.js';

/** Counter values the card may sign with: start ≤ value < end. */
export interface CounterGrant {
  readonly start: bigint;
  readonly end: bigint;
}

/** A card signing key held outside the card's memory (a dongle's token, `--keys-on-token`): only its public half is known. */
export interface CardSigner {
  /** The Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
  /** The Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * A server-held card's SIGN AND INCREMENT (DESIGN.md "Software rental", trust model; patent 003 [0096]): the key
 * is sealed to the VSC server and the counter lives in its database, so each signature is one round trip.
 */
export interface ServerHeldSigner {
  /** The Ed25519 public key of the key the server holds (32 bytes). */
  readonly publicKey: Uint8Array;
  /** The counter value the server signs with next, as the insert said. */
  readonly next: bigint;
  /**
   * The server signs SHA-256(h ‖ counter) with the card's next counter value and records counter + 1 in one
   * transaction, then answers. Throws SignRefusedError for a refusal; anything else is taken for a lost answer.
   */
  signAndIncrement(h: Uint8Array): Promise<SignAndIncrementResult>;
}

/** What `open` hands the card. */
export interface OpenedCard {
  readonly serial: string;
  readonly keyMode: VscKeyMode;
  /** The protected information (protected-information-codec.ts); the card moves it into encrypted memory and zeroes it. */
  readonly plaintext: Uint8Array;
  /** The first counter values; may be empty for a backing that grants on demand. */
  readonly grant: CounterGrant;
  /** Signs instead of the signing seed in the information (only with grantMode 'on-demand'). */
  readonly signer?: CardSigner;
  /** Present exactly when the information is a server-held card's: its server signs, and `grant` is unused. */
  readonly serverHeld?: ServerHeldSigner;
}

/**
 * The backing of a running card. Whatever the backing, no counter value is ever signed twice: the
 * card signs only values granted to it, and a backing grants a value only once it has recorded that
 * the value may be used (the server: the window's end in its database; a state file: the counter
 * written to disk; a dongle: the counter on the token), so a crash skips values, never repeats them.
 */
export interface CardBacking {
  /** Takes the card: the server's insert, a state file's lock and read, a dongle's unsealing. */
  open(): Promise<OpenedCard>;
  /**
   * How further counter values are granted. `ahead`: asked for in the background when a quarter of
   * the grant is left, and a signature past the grant is refused until one arrives (the server, one
   * round trip away). `on-demand`: asked for when a signature needs a value, which waits for it (a
   * local file or token, where the grant is one durable write).
   */
  readonly grantMode: 'ahead' | 'on-demand';
  /**
   * Further counter values, wholly past `next` (the value the card signs with next). `snapshot` gives
   * the information as it stands, for a backing that keeps the counter inside it (caller wipes).
   */
  grantMore(next: bigint, snapshot: () => Uint8Array): Promise<CounterGrant>;
  /** The information changed (a PIV try, a new key): a durable backing records it before the card answers. */
  save(snapshot: Uint8Array): Promise<void>;
  /** The card leaves: the final information, its counter at `nextCounter`, goes back (the server's remove). */
  giveBack(snapshot: Uint8Array, nextCounter: bigint): Promise<void>;
  /** Forgets the backing's own secrets (owner keys, holder secret), whether or not the card was given back. */
  close(): Promise<void>;
}
