// A licensor's or time service's "this card is locked" (Wibu 000 "CM-Box Backup" §2.10): when the answer carries the
// central authority's lock sequence, the customer's command hands it to the card, as CodeMeter's Web Communicator does,
// and the card locks itself; the command then fails with the reason.
import type { LicenseCardLink } from '../../license/index.js';
import type { AuditRecord } from '../../rental/index.js';

type LockingLink = Pick<LicenseCardLink, 'card'> & { locking(sequence: string): Promise<unknown> };

/** Runs `call`; a 423 refusal with a lock sequence locks the card through `link` before it is thrown on. */
export async function lockedByAnswer<T>(link: LockingLink, call: () => Promise<T>): Promise<T> {
  const { IssuingRefusal, LicenseError } = await import('../../license/index.js');
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof IssuingRefusal) || error.reason !== 'locked' || error.details.lockSequence === undefined) throw error;
    try {
      await link.locking(error.details.lockSequence);
    } catch (cause) {
      if (!(cause instanceof LicenseError) || cause.reason !== 'locked') throw new LicenseError('locked', `card ${link.card.serial} is on a locking list, and locking it failed: ${(cause as Error).message}`, { cause });
    }
    throw new LicenseError('locked', `card ${link.card.serial} was restored elsewhere as lost, stolen or broken and is now locked (000 §2.10); only the central authority unlocks it`, { cause: error });
  }
}

type ApplyingLink = LockingLink & { apply(update: string): Promise<AuditRecord> };
type ReceiptClient = { receipt(request: { serial: string; record: AuditRecord }): Promise<unknown> };

/**
 * A license the licensor withdraws from this card (001 "the old license is withdrawn"), handed over with its next
 * answer: applied first (the answer's own update is signed for the counter after it), and its receipt sent back, so
 * the licensor stops handing it out.
 */
export async function applyWithdrawal(link: ApplyingLink, client: ReceiptClient, answer: { readonly withdrawal?: { readonly update: string } }): Promise<void> {
  if (answer.withdrawal === undefined) return;
  const record = await link.apply(answer.withdrawal.update);
  await client.receipt({ serial: link.card.serial, record });
}
