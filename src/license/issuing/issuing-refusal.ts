// A request the issuing back end refuses (Wibu 002 back-end license issuing): a LicenseError with the HTTP status it is
// answered with, as {"error": {"reason", "message"}}. The same class comes back out of issuing-client.ts.
import { LicenseError, LICENSE_REASONS, type LicenseReason } from '../license-error.js';

/**
 * What a refusal carries beside its reason (answered next to "error"): the central lock sequence of a locked container
 * (000 §2.10: the customer's CLI applies it and the card locks), the alert a request waits on for the licensor's
 * approval (000 §2.11, 001), the time a checkpoint renewal is due (001).
 */
export interface RefusalDetails {
  readonly lockSequence?: string;
  readonly alert?: number;
  readonly dueAt?: number;
}

export class IssuingRefusal extends LicenseError {
  constructor(readonly status: number, reason: LicenseReason, message: string, readonly retryAfterSeconds?: number, readonly details: RefusalDetails = {}) {
    super(reason, message);
  }
}

/** The status a LicenseError thrown by a parser or a check below the service is answered with. */
export function statusOf(reason: LicenseReason): number {
  switch (reason) {
    case 'input':
      return 400;
    case 'unauthenticated':
      return 401;
    case 'no-license':
      return 404;
    case 'signature':
      return 422;
    case 'limit':
      return 429;
    case 'locked':
      return 423;
    case 'not-restorable':
      return 422;
    default:
      return 409;
  }
}

export const isLicenseReason = (value: unknown): value is LicenseReason => typeof value === 'string' && (LICENSE_REASONS as readonly string[]).includes(value);

/** Shorthands for the refusals the service gives. */
export const refuse = {
  input: (message: string) => new IssuingRefusal(400, 'input', message),
  unauthenticated: (message: string) => new IssuingRefusal(401, 'unauthenticated', message),
  unknownTicket: () => new IssuingRefusal(404, 'ticket', 'no such ticket'),
  ticket: (message: string) => new IssuingRefusal(409, 'ticket', message),
  noLicense: (message: string) => new IssuingRefusal(404, 'no-license', message),
  conflict: (reason: LicenseReason, message: string) => new IssuingRefusal(409, reason, message),
  limit: (message: string, retryAfterSeconds?: number) => new IssuingRefusal(429, 'limit', message, retryAfterSeconds),
  signature: (message: string) => new IssuingRefusal(422, 'signature', message),
  locked: (message: string, lockSequence?: string) => new IssuingRefusal(423, 'locked', message, undefined, lockSequence === undefined ? {} : { lockSequence }),
  notRestorable: (message: string) => new IssuingRefusal(422, 'not-restorable', message),
  approval: (message: string, alert: number) => new IssuingRefusal(409, 'approval', message, undefined, { alert }),
  notDue: (message: string, dueAt: number) => new IssuingRefusal(409, 'limit', message, undefined, { dueAt }),
};
