// What a program on another machine uses to hold a seat of a network license server (Wibu 002 Table 1): a lease kept
// alive by heartbeats and given back at the end; high availability ("2 out of 3": a seat held while two of three
// servers granted it); hot standby (the standby server is asked when the primary does not answer); borrowing. The
// client believes a server only through the licensor's card binding of the server's card: every seat comes with a
// record that card signed for exactly this product and these features.
import { bytesEqual, toHex } from '../../bytes/index.js';
import { parseRecordLine, verifyRecord, type AuditRecord } from '../../rental/index.js';
import { parseCardBinding, verifyCardBinding } from '../card-binding.js';
import { LICENSE_REASONS, LicenseError, type LicenseReason } from '../license-error.js';
import { licensorDigest, parseLicenseRecordText } from '../license-record-text.js';
import { parseBorrowCertificate, type BorrowCertificate } from './borrow-certificate.js';

export interface SeatRequest {
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  readonly features?: number;
  /** This program's name for itself at the server (host and process, say): asking again gives the same seat. */
  readonly client: string;
  /** Heartbeat period (default 20 s; the server's lease lasts 60 s without one). 0: none (tests). */
  readonly heartbeatMs?: number;
  readonly timeoutMs?: number;
}

/** The server could not be reached or failed: another server may be asked (standby, high availability). */
export class LicenseServerUnavailableError extends LicenseError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('card', message, options);
  }
}

async function call(server: string, method: 'POST' | 'DELETE', path: string, body: unknown, timeoutMs: number): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(new URL(path, server), {
      method, signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new LicenseServerUnavailableError(`the license server ${server} does not answer: ${(error as Error).message}`, { cause: error });
  }
  let answer: Record<string, unknown>;
  try {
    answer = await response.json() as Record<string, unknown>;
  } catch (error) {
    throw new LicenseServerUnavailableError(`the license server ${server} answered ${response.status} without JSON`, { cause: error });
  }
  if (response.ok) return answer;
  if (response.status >= 500) throw new LicenseServerUnavailableError(`the license server ${server} failed (${response.status})`);
  const refusal = answer['error'] as { reason?: unknown; message?: unknown } | undefined;
  const reason = typeof refusal?.reason === 'string' && (LICENSE_REASONS as readonly string[]).includes(refusal.reason) ? refusal.reason as LicenseReason : 'input';
  throw new LicenseError(reason, `the license server ${server} refused: ${typeof refusal?.message === 'string' ? refusal.message : response.status}`);
}

/** A seat held on one server. */
export class NetworkSeat {
  #timer: NodeJS.Timeout | undefined;
  #released = false;

  constructor(readonly server: string, readonly id: string, readonly overflow: boolean, readonly record: AuditRecord, heartbeatMs: number, private readonly timeoutMs: number) {
    if (heartbeatMs > 0) {
      this.#timer = setInterval(() => void this.heartbeat().catch(() => undefined), heartbeatMs);
      this.#timer.unref();
    }
  }

  async heartbeat(): Promise<void> {
    await call(this.server, 'POST', `/v1/seats/${this.id}/heartbeat`, undefined, this.timeoutMs);
  }

  /** Gives the seat back at once (the server frees it anyway once heartbeats stop). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    await call(this.server, 'DELETE', `/v1/seats/${this.id}`, undefined, this.timeoutMs).catch(() => undefined);
  }
}

/** Checks a seat's record: signed by the server's card the licensor bound, a 0-unit use of this product and features. */
function checkGrant(answer: Record<string, unknown>, request: SeatRequest): AuditRecord {
  const binding = parseCardBinding(String(answer['binding']));
  verifyCardBinding(binding, request.licensorKey);
  const record = parseRecordLine(JSON.stringify(answer['record']));
  if (!verifyRecord(record, { publicKey: binding.cardPublicKey, serial: binding.serial, keyMode: binding.keyMode })) {
    throw new LicenseError('signature', `the seat's record was not signed by the licensor's bound card ${binding.serial}`);
  }
  const text = parseLicenseRecordText(record.text);
  if (text.kind !== 'use' || text.licensor !== licensorDigest(request.licensorKey) || text.productCode !== request.productCode || text.features !== (request.features ?? 0) || text.units !== 0) {
    throw new LicenseError('signature', `the seat's record is not this product's allocation: ${record.text}`);
  }
  return record;
}

/** Takes a seat on `server`; refusals are LicenseError ('seats', 'expired', ...), an unreachable server LicenseServerUnavailableError. */
export async function acquireSeat(server: string, request: SeatRequest): Promise<NetworkSeat> {
  const timeoutMs = request.timeoutMs ?? 10_000;
  const answer = await call(server, 'POST', '/v1/seats', { licensorKey: toHex(request.licensorKey), productCode: request.productCode, features: request.features ?? 0, client: request.client }, timeoutMs);
  const seat = answer['seat'] as { id: string; overflow: boolean };
  const record = answer['again'] === true ? undefined : checkGrant(answer, request);
  return new NetworkSeat(server, seat.id, seat.overflow, record ?? ({} as AuditRecord), request.heartbeatMs ?? 20_000, timeoutMs);
}

/** Hot standby: the primary, and the standby when the primary does not answer (a refusal by the primary stands). */
export async function acquireWithStandby(primary: string, standby: string, request: SeatRequest): Promise<NetworkSeat> {
  try {
    return await acquireSeat(primary, request);
  } catch (error) {
    if (!(error instanceof LicenseServerUnavailableError)) throw error;
    return acquireSeat(standby, request);
  }
}

/**
 * High availability, "2 out of 3": the seat is asked of every server and held while at least two granted it. With
 * all three up a program takes a seat on each, so N seats on each server serve N programs; with one down, two each.
 */
export async function acquireMajority(servers: readonly string[], request: SeatRequest): Promise<{ readonly seats: readonly NetworkSeat[]; release(): Promise<void> }> {
  if (servers.length !== 3) throw new LicenseError('input', `expected three license servers for "2 out of 3", got ${servers.length}`);
  const results = await Promise.allSettled(servers.map((server) => acquireSeat(server, request)));
  const seats = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const release = async () => {
    await Promise.all(seats.map((seat) => seat.release()));
  };
  if (seats.length < 2) {
    await release();
    const refused = results.find((result): result is PromiseRejectedResult => result.status === 'rejected' && !(result.reason instanceof LicenseServerUnavailableError));
    throw refused?.reason instanceof LicenseError ? refused.reason : new LicenseError('seats', `only ${seats.length} of 3 license servers granted a seat: "2 out of 3" needs two`);
  }
  return { seats, release };
}

/** Borrows a seat for `seconds` onto the card `borrowerCard` (this machine's); the certificate works offline until its end. */
export async function borrowSeat(server: string, request: SeatRequest & { readonly borrowerCard: { readonly serial: string; readonly publicKey: Uint8Array }; readonly seconds: number }): Promise<{ readonly id: string; readonly certificate: BorrowCertificate; readonly text: string }> {
  const answer = await call(server, 'POST', '/v1/borrow', {
    licensorKey: toHex(request.licensorKey), productCode: request.productCode, features: request.features ?? 0, client: request.client,
    borrowerCard: { serial: request.borrowerCard.serial, cardPublicKey: toHex(request.borrowerCard.publicKey) }, seconds: request.seconds,
  }, request.timeoutMs ?? 10_000);
  checkGrant(answer, request);
  const text = JSON.stringify(answer['certificate']);
  const certificate = parseBorrowCertificate(text);
  const binding = parseCardBinding(certificate.binding);
  if (!bytesEqual(binding.licensorKey, request.licensorKey)) throw new LicenseError('signature', 'the borrow certificate names another licensor');
  return { id: (answer['seat'] as { id: string }).id, certificate, text };
}

/** Returns a borrowed seat early. */
export async function returnBorrowed(server: string, id: string, timeoutMs = 10_000): Promise<void> {
  await call(server, 'DELETE', `/v1/borrow/${id}`, undefined, timeoutMs);
}
