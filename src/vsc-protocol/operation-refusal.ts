// The one refusal of an operation (patent 004 Fig. 4: the server refuses every other transition):
// thrown by the card store, sent by the server, rethrown by the client, with one exit code per reason.
import { ExitCode, VscError } from '../errors/index.js';

/** Why the server refused; the client maps it to its exit code (DESIGN.md "Command line"). */
export const REFUSALS = ['unknown-card', 'busy', 'retry-later', 'wrong-state', 'not-enrolled', 'blocked', 'authentication', 'muk-mismatch', 'holder-mismatch', 'implementation', 'protocol', 'internal'] as const;
export type Refusal = (typeof REFUSALS)[number];

export function refusalExitCode(reason: Refusal): ExitCode {
  switch (reason) {
    case 'unknown-card':
    case 'busy':
    case 'retry-later':
    case 'wrong-state':
    case 'not-enrolled':
      return ExitCode.refusedByState;
    case 'blocked':
    case 'authentication':
    case 'implementation':
      return ExitCode.authenticationFailed;
    case 'muk-mismatch':
    case 'holder-mismatch':
      return ExitCode.mukMismatch;
    case 'protocol':
    case 'internal':
      return ExitCode.other;
  }
}

/** The server said no (or, in the store, is about to): the exit code follows from the reason. */
export class OperationRefused extends VscError {
  override readonly name = 'OperationRefused';
  constructor(
    readonly reason: Refusal,
    message: string,
  ) {
    super(`server.${reason}`, message, { exitCode: refusalExitCode(reason) });
  }
}
