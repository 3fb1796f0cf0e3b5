// How the rental server reaches its card ([0058]: "The Rental Server synchronizes access to the smart card"): one
// exclusive transaction per unit of work, the VSC applet selected at its start, so that no other application's
// command (OpenSC driving the PIV applet, another program) lands between a Write's SELECT, GET COUNTER, SIGN AND
// INCREMENT and GET COUNTER. Through pcscd (an exclusive connection, retried while another application holds the
// card), or through any PC/SC-style handle with Begin/EndTransaction (the in-process reader of tests and the demo).
import { setTimeout as sleep } from 'node:timers/promises';
import { commandApdu, SW, VSC_CLA, VscIns, type VscKeyMode } from '../apdu/index.js';
import { CardStatusError, exchange, VscAppletClient, type CardTransport } from '../card-client/index.js';
import { PcscdError, SCARD_LEAVE_CARD, withExclusiveCard, type Disposition } from '../reader-driver/index.js';
import type { RentalCardIdentity } from './rental-answers.js';
import { RentalError } from './rental-error.js';

/** The card inside one transaction: the typed VSC applet client (already selected) and the raw transport. */
export interface RentalCardSession {
  readonly client: VscAppletClient;
  readonly transport: CardTransport;
}

export interface RentalCardAccess {
  /** Where the card is, for messages: `reader "Virtual PCD 00 00" through pcscd`. */
  readonly description: string;
  /**
   * Runs `body` as one exclusive transaction with the VSC applet selected. Fails with RentalError `busy` when another
   * application held the card for too long (nothing ran), `card` when the card could not be reached.
   */
  transaction<T>(body: (session: RentalCardSession) => Promise<T>): Promise<T>;
}

export interface PcscdCardAccessOptions {
  /** How long to keep trying while another application holds the card (default 10 s). */
  readonly busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
const FIRST_RETRY_MS = 5;
const MAX_RETRY_MS = 100;

function causeText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The card in pcscd's `reader`. Each transaction is one exclusive connection (pcscd-client.ts: what a PC/SC
 * transaction gives, and more); while another application holds a connection to the card, it is tried again with
 * a growing pause until `busyTimeoutMs`.
 */
export function pcscdCardAccess(reader: string, options: PcscdCardAccessOptions = {}): RentalCardAccess {
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new RentalError('input', `expected a busy timeout in whole milliseconds, got ${String(busyTimeoutMs)}`);
  const description = `reader ${JSON.stringify(reader)} through pcscd`;
  return {
    description,
    async transaction<T>(body: (session: RentalCardSession) => Promise<T>): Promise<T> {
      const deadline = Date.now() + busyTimeoutMs;
      let pause = FIRST_RETRY_MS;
      for (;;) {
        let entered = false;
        try {
          return await withExclusiveCard(reader, async (connection) => {
            entered = true;
            const client = new VscAppletClient(connection);
            await client.select();
            return await body({ client, transport: connection });
          });
        } catch (error) {
          if (entered) throw error;
          if (!(error instanceof PcscdError)) throw error;
          if (error.code !== 'pcscd.busy') throw new RentalError('card', `cannot reach the card in ${description}: ${error.message}`, { cause: error });
          if (Date.now() >= deadline) {
            throw new RentalError('busy', `another application held the card in ${description} for ${busyTimeoutMs} ms: nothing was signed, try again`, { cause: error });
          }
          await sleep(pause);
          pause = Math.min(pause * 2, MAX_RETRY_MS);
        }
      }
    },
  };
}

/** A PC/SC-style handle with transactions: the in-process CardHandle. */
export interface TransactionalHandle extends CardTransport {
  beginTransaction(): Promise<void>;
  endTransaction(disposition: Disposition): Promise<void>;
}

/** A card reached through a connected handle; Begin/EndTransaction around each unit of work. */
export function handleCardAccess(handle: TransactionalHandle, description = 'the in-process reader'): RentalCardAccess {
  const client = new VscAppletClient(handle);
  return {
    description,
    async transaction<T>(body: (session: RentalCardSession) => Promise<T>): Promise<T> {
      try {
        await handle.beginTransaction();
      } catch (error) {
        throw new RentalError('card', `cannot reach the card in ${description}: ${causeText(error)}`, { cause: error });
      }
      try {
        await client.select();
        return await body({ client, transport: handle });
      } finally {
        await handle.endTransaction(SCARD_LEAVE_CARD).catch(() => undefined);
      }
    },
  };
}

/** The status word of SIGN AND INCREMENT without data under P1 `p1`: signs nothing whatever the card's key mode. */
async function probeSign(transport: CardTransport, p1: number): Promise<number> {
  try {
    await exchange(transport, commandApdu({ cla: VSC_CLA, ins: VscIns.SIGN_AND_INCREMENT, p1, ne: 256 }));
    return SW.OK;
  } catch (error) {
    if (error instanceof CardStatusError) return error.sw;
    throw error;
  }
}

/**
 * The key mode of the card's SIGN AND INCREMENT (DESIGN.md "The VSC applet": P1 00 individual, 01 universal, the
 * other P1 answers 6A86). Asked without data, so that nothing is signed: the card's own P1 gets a length refusal,
 * the other 6A86. A card that does not tell them apart this way needs the key mode given.
 */
export async function probeKeyMode(transport: CardTransport): Promise<VscKeyMode | undefined> {
  const individual = await probeSign(transport, 0x00);
  const universal = await probeSign(transport, 0x01);
  if (individual === SW.INCORRECT_P1P2 && universal !== SW.INCORRECT_P1P2 && universal !== SW.OK) return 'universal';
  if (universal === SW.INCORRECT_P1P2 && individual !== SW.INCORRECT_P1P2 && individual !== SW.OK) return 'individual';
  return undefined;
}

/** GET SERIAL NUMBER, GET PUBLIC KEY and the key mode (given, or probed). */
export async function readCardIdentity(session: RentalCardSession, keyMode?: VscKeyMode): Promise<RentalCardIdentity> {
  const serial = await session.client.serialNumber();
  const publicKey = await session.client.publicKey();
  const mode = keyMode ?? (await probeKeyMode(session.transport));
  if (mode === undefined) throw new RentalError('card', `the card ${serial} does not show its key mode (SIGN AND INCREMENT P1 00 or 01): give it (--key-mode individual or universal)`);
  return { serial, publicKey, keyMode: mode };
}
