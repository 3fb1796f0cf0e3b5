// Why a license operation was refused: one stable reason per refusal, shared by the card's license applet (as status
// words), the program-side SDK (as denied decisions), the CLI (as exit codes) and the issuing back end (as HTTP errors).
import { ExitCode, VscError } from '../errors/index.js';

export const LICENSE_REASONS = [
  'input', // malformed request, update, file or flag
  'no-license', // no firm item of that licensor, or no product item of that code
  'feature', // the item does not unlock the features asked for
  'expired', // at or after the expiration time, or past the usage period
  'not-yet-active', // before the activation time
  'exhausted', // the unit counter has not enough units left
  'clock-set-back', // the host clock lies before the container's clock
  'country', // the host's country is not allowed
  'time-zone', // the host's time zone is outside the allowed offsets
  'user', // not the named user
  'computer', // not the computer (or virtual machine) the item is bound to
  'version', // the program version is outside the item's versions (upgrade / downgrade rights)
  'maintenance', // the program was released after software assurance ended
  'seats', // every seat of a network item is taken
  'signature', // an update, time certificate, receipt or file whose signature does not verify
  'foreign', // an update for another container, or by another licensor than the firm item's
  'replayed', // an update whose firm update counter was already used (replayed or reordered)
  'capacity', // the container would not fit into the card's protected information
  'card', // the card could not be reached or refused the command
  'ticket', // unknown, used up or revoked ticket
  'limit', // a rate, body-size or activation-cycling limit
  'unauthenticated', // a licensor request without valid credentials
  'locked', // the container is locked (000 §2.10: restored elsewhere as lost, broken or stolen)
  'not-restorable', // the licensor does not restore this item (no restoring service, policy none)
  'approval', // waits for the licensor's approval (repeated restores 000 §2.11, manual reactivation 001)
] as const;
export type LicenseReason = (typeof LICENSE_REASONS)[number];

export class LicenseError extends VscError {
  override readonly name = 'LicenseError';
  constructor(readonly reason: LicenseReason, message: string, options: { cause?: unknown } = {}) {
    super(`license.${reason}`, message, {
      ...options,
      exitCode: reason === 'input' ? ExitCode.usage : reason === 'unauthenticated' || reason === 'signature' ? ExitCode.authenticationFailed : reason === 'card' ? ExitCode.other : ExitCode.refusedByState,
    });
  }
}
