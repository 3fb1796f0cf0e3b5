// Sends the uploads waiting in this machine's state directory (pending-upload.ts): at the next
// `vsc card insert`, `remove`, `status` or `recover` (from the user's data directory), with the machine lock held so that no card
// process of this machine runs meanwhile. Each goes to the server it came from, proving the holder
// by this machine's MUK and the holder secret kept with it.
import { encodeServerPublicKey } from '../channel/index.js';
import { wipe } from '../bytes/index.js';
import { OperationRefused } from '../vsc-protocol/index.js';
import { serverEndpoint } from './client-config.js';
import { KnownCards } from './known-cards.js';
import { PendingUploads, type PendingUpload } from './pending-upload.js';
import { isRetryableRemoveFailure, removeCard } from './server-operations.js';

export type DeliveryOutcome =
  | { readonly serial: string; readonly outcome: 'delivered' }
  | { readonly serial: string; readonly outcome: 'waiting'; readonly path: string; readonly reason: string }
  | { readonly serial: string; readonly outcome: 'refused'; readonly path: string; readonly reason: string };

export interface DeliveryOptions {
  /** Where the uploads wait (dataDirectory); the caller holds the machine lock. */
  readonly dataDir: string;
  readonly muk: Uint8Array;
  /** Only this card's upload (insert and recover of one serial); default all of them. */
  readonly serial?: string;
  /** How long each is retried while the server cannot take it; default 0 (one try each). */
  readonly retryMs?: number;
}

/** The serials with an upload waiting on this machine. */
export const waitingUploads = (dataDir: string): string[] => new PendingUploads(dataDir).serials();

/** Tries every waiting upload once (or for retryMs); returns what became of each. */
export async function deliverPendingUploads(options: DeliveryOptions): Promise<DeliveryOutcome[]> {
  const pending = new PendingUploads(options.dataDir);
  const knownCards = new KnownCards(options.dataDir);
  const outcomes: DeliveryOutcome[] = [];
  for (const serial of pending.serials()) {
    if (options.serial !== undefined && serial !== options.serial) continue;
    let upload: PendingUpload;
    try {
      upload = pending.read(serial)!;
    } catch (error) {
      // A damaged file must not stand in the way of every later insert: it is set aside, not deleted.
      outcomes.push({ serial, outcome: 'refused', path: pending.setAside(serial), reason: `the file is damaged: ${(error as Error).message}` });
      continue;
    }
    try {
      const endpoint = {
        ...serverEndpoint({
          server: upload.url, serverKey: encodeServerPublicKey(upload.serverKey),
          ...(upload.masterKeyFile === undefined ? {} : { masterKeyFile: upload.masterKeyFile }), ...(upload.keyfile === undefined ? {} : { keyfile: upload.keyfile }),
        }),
        knownCards,
        retryMs: options.retryMs ?? 0,
      };
      await removeCard(endpoint, serial, {
        muk: options.muk, holderSecret: upload.holderSecret, sealed: upload.sealed, sealedVersion: upload.sealedVersion,
        ...(upload.nextCounter === undefined ? {} : { nextCounter: upload.nextCounter }),
      });
      pending.done(serial);
      outcomes.push({ serial, outcome: 'delivered' });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof OperationRefused && !isRetryableRemoveFailure(error)) outcomes.push({ serial, outcome: 'refused', path: pending.setAside(serial), reason });
      else outcomes.push({ serial, outcome: 'waiting', path: pending.pathOf(serial), reason });
    } finally {
      wipe(upload.holderSecret);
    }
  }
  return outcomes;
}

/** One line per outcome, for the commands that deliver. */
export function describeDelivery(outcome: DeliveryOutcome): string {
  switch (outcome.outcome) {
    case 'delivered':
      return `card ${outcome.serial}: the changes kept on this machine were delivered; the card is idle`;
    case 'waiting':
      return `card ${outcome.serial}: changes waiting in ${outcome.path} (not delivered yet: ${outcome.reason})`;
    case 'refused':
      return `card ${outcome.serial}: the server refused the changes kept on this machine (${outcome.reason}); they are set aside in ${outcome.path}`;
  }
}
