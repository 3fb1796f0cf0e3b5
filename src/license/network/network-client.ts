// What a program on another machine uses to license itself from network license servers (Wibu 002 Table 1: network /
// floating license, high availability, hot and cold standby, borrowable):
//
//   const client = new NetworkLicenseClient({ servers: { kind: 'standby', primary: URL1, standby: URL2 }, client: 'cad-7' });
//   const seat = await client.acquire(LICENSOR_KEY, 7, FEATURE_EXPORT);   // heartbeats run by themselves
//   if (seat.held) { ...the feature... }
//   await seat.release();
//
// The program believes a server only through its licensor: every lease carries a record the server's card signed and
// the licensor's binding of that card (server-lease.ts); a borrow certificate is checked the same way, offline.
import { hostname } from 'node:os';
import { toHex } from '../../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../../crypto/index.js';
import type { TrustRoot } from '../../rental/index.js';
import { LicenseError } from '../license-error.js';
import { MAX_CODE, type UnixSeconds } from '../license-model.js';
import { checkBorrowed, parseBorrowCertificate, type BorrowCertificate } from './borrow-certificate.js';
import { MajoritySeat, SingleServerSeat, StandbySeat, type HeldSeat, type HoldOptions } from './held-seat.js';
import { callLicenseServer, checkServerUrl, LicenseServerUnavailableError } from './network-http.js';
import type { SeatRequest } from './server-lease.js';

export type LicenseServers =
  | { readonly kind: 'single'; readonly url: string }
  /** "2 out of 3": three servers, each with its own card holding the same item. */
  | { readonly kind: 'high-availability'; readonly urls: readonly string[] }
  /** Hot or cold standby: which one the standby server's item and start make it; the client is the same. */
  | { readonly kind: 'standby'; readonly primary: string; readonly standby: string };

export interface NetworkClientOptions {
  readonly servers: LicenseServers;
  /** This program's name at the servers (default host name and process id): asking again gives the same seat. */
  readonly client?: string;
  /** The user, for named-user items. */
  readonly user?: string;
  /** Milliseconds between heartbeats (default: the servers' period); 0: none, the program calls seat.refresh(). */
  readonly heartbeatMs?: number;
  readonly timeoutMs?: number;
  /** This host's clock in Unix seconds (tests inject one). */
  readonly now?: () => UnixSeconds;
  readonly onLost?: (seat: HeldSeat) => void;
}

export interface BorrowedSeat {
  readonly server: string;
  /** The borrow's id at the server (returnBorrowed). */
  readonly id: string;
  readonly until: UnixSeconds;
  readonly certificate: BorrowCertificate;
  /** The certificate's file form: keep it beside the program for offline use (checkBorrowed). */
  readonly text: string;
}

const CLIENT = /^[\x21-\x7e]{1,64}$/;

function checkProduct(licensorKey: Uint8Array, productCode: number, features: number): void {
  if (!(licensorKey instanceof Uint8Array) || licensorKey.length !== ED25519_PUBLIC_KEY_LENGTH) throw new LicenseError('input', `expected a ${ED25519_PUBLIC_KEY_LENGTH}-byte licensor key, got ${licensorKey instanceof Uint8Array ? `${licensorKey.length} bytes` : typeof licensorKey}`);
  for (const [name, value] of [['product code', productCode], ['features', features]] as const) {
    if (!Number.isSafeInteger(value) || value < 0 || value > MAX_CODE) throw new LicenseError('input', `expected the ${name} as a whole number in 0..${MAX_CODE}, got ${String(value)}`);
  }
}

export class NetworkLicenseClient {
  readonly #servers: LicenseServers;
  readonly #client: string;
  readonly #hold: HoldOptions;

  constructor(private readonly options: NetworkClientOptions) {
    const servers = options.servers;
    switch (servers?.kind) {
      case 'single':
        this.#servers = Object.freeze({ kind: 'single', url: checkServerUrl(servers.url) });
        break;
      case 'high-availability':
        if (!Array.isArray(servers.urls) || servers.urls.length !== 3) throw new LicenseError('input', `expected three license servers for "2 out of 3", got ${Array.isArray(servers.urls) ? servers.urls.length : typeof servers.urls}`);
        this.#servers = Object.freeze({ kind: 'high-availability', urls: Object.freeze(servers.urls.map((url) => checkServerUrl(url))) });
        break;
      case 'standby':
        this.#servers = Object.freeze({ kind: 'standby', primary: checkServerUrl(servers.primary, 'primary license server'), standby: checkServerUrl(servers.standby, 'standby license server') });
        break;
      default:
        throw new LicenseError('input', 'expected servers of kind single, high-availability or standby');
    }
    this.#client = options.client ?? `${hostname()}-${process.pid}`.replace(/[^\x21-\x7e]/g, '_').slice(0, 64);
    if (!CLIENT.test(this.#client)) throw new LicenseError('input', 'expected the client name as 1..64 printable ASCII characters without spaces');
    const timeoutMs = options.timeoutMs ?? 5_000;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new LicenseError('input', `expected a timeout in whole milliseconds, got ${String(timeoutMs)}`);
    if (options.heartbeatMs !== undefined && (!Number.isSafeInteger(options.heartbeatMs) || options.heartbeatMs < 0)) throw new LicenseError('input', `expected heartbeats every 0 or more whole milliseconds, got ${String(options.heartbeatMs)}`);
    this.#hold = {
      timeoutMs, now: options.now ?? (() => Math.floor(Date.now() / 1000)),
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }), ...(options.onLost === undefined ? {} : { onLost: options.onLost }),
    };
  }

  /** A seat of the product with these features; refused with a LicenseError ('seats', 'expired', 'feature', ...). */
  async acquire(licensorKey: Uint8Array, productCode: number, features = 0): Promise<HeldSeat> {
    checkProduct(licensorKey, productCode, features);
    const request: SeatRequest = { licensorKey, productCode, features, client: this.#client, ...(this.options.user === undefined ? {} : { user: this.options.user }) };
    const servers = this.#servers;
    switch (servers.kind) {
      case 'single':
        return SingleServerSeat.acquire(servers.url, request, this.#hold);
      case 'high-availability':
        return MajoritySeat.acquire(servers.urls, request, this.#hold);
      case 'standby':
        return StandbySeat.acquire(servers.primary, servers.standby, request, this.#hold);
    }
  }

  /**
   * Borrows a seat onto `borrowerCard` (this machine's card) for `seconds`, from the first server that answers (the
   * primary; a standby does not lend). The certificate is checked before it is returned.
   */
  async borrow(licensorKey: Uint8Array, productCode: number, borrow: { readonly borrowerCard: TrustRoot; readonly seconds: number; readonly features?: number }): Promise<BorrowedSeat> {
    const features = borrow.features ?? 0;
    checkProduct(licensorKey, productCode, features);
    if (!Number.isSafeInteger(borrow.seconds) || borrow.seconds < 1) throw new LicenseError('input', `expected the seconds to borrow for as a whole number, got ${String(borrow.seconds)}`);
    const card = borrow.borrowerCard;
    const body = {
      licensorKey: toHex(licensorKey), productCode, features, client: this.#client, seconds: borrow.seconds,
      borrowerCard: { serial: card.serial, cardPublicKey: toHex(card.publicKey), keyMode: card.keyMode },
    };
    let lastError: unknown;
    for (const server of this.#lenders()) {
      try {
        const answer = await callLicenseServer(server, 'POST', '/v1/borrow', body, this.#hold.timeoutMs);
        const { borrowId, certificate } = answer;
        if (typeof borrowId !== 'string' || !/^[0-9a-f]{24}$/.test(borrowId) || typeof certificate !== 'string') throw new LicenseError('input', 'borrow: expected borrowId and certificate');
        const parsed = parseBorrowCertificate(certificate);
        const checked = checkBorrowed(parsed, { licensorKey, productCode, features, now: this.#hold.now(), ownCard: card });
        if (checked.id !== borrowId) throw new LicenseError('signature', 'the borrow certificate names another borrow than the server answered');
        return { server, id: borrowId, until: checked.until, certificate: parsed, text: certificate };
      } catch (error) {
        if (!(error instanceof LicenseServerUnavailableError)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /** Gives a borrowed seat back before its end (a copy of the certificate kept still works offline until then). */
  async returnBorrowed(borrowed: Pick<BorrowedSeat, 'server' | 'id'>): Promise<void> {
    await returnBorrowed(borrowed.server, borrowed.id, this.#hold.timeoutMs);
  }

  #lenders(): readonly string[] {
    const servers = this.#servers;
    return servers.kind === 'single' ? [servers.url] : servers.kind === 'standby' ? [servers.primary] : servers.urls;
  }
}

/** One server, one seat: `new NetworkLicenseClient({ servers: { kind: 'single', url: server }, ... }).acquire(...)`. */
export function acquireSeat(server: string, request: Omit<NetworkClientOptions, 'servers'> & { readonly licensorKey: Uint8Array; readonly productCode: number; readonly features?: number }): Promise<HeldSeat> {
  return new NetworkLicenseClient({ ...request, servers: { kind: 'single', url: server } }).acquire(request.licensorKey, request.productCode, request.features ?? 0);
}

/** One server, one borrow (`vsc license borrow`). */
export function borrowSeat(server: string, request: Omit<NetworkClientOptions, 'servers'> & { readonly licensorKey: Uint8Array; readonly productCode: number; readonly features?: number; readonly borrowerCard: TrustRoot; readonly seconds: number }): Promise<BorrowedSeat> {
  const borrow = { borrowerCard: request.borrowerCard, seconds: request.seconds, ...(request.features === undefined ? {} : { features: request.features }) };
  return new NetworkLicenseClient({ ...request, servers: { kind: 'single', url: server } }).borrow(request.licensorKey, request.productCode, borrow);
}

/** Gives a borrowed seat back to `server` before its end (`vsc license return`); a kept copy still works offline until then. */
export async function returnBorrowed(server: string, id: string, timeoutMs = 5_000): Promise<void> {
  if (typeof id !== 'string' || !/^[0-9a-f]{24}$/.test(id)) throw new LicenseError('input', 'expected the borrow id as 24 lowercase hex digits');
  await callLicenseServer(checkServerUrl(server), 'DELETE', `/v1/borrow/${id}`, undefined, timeoutMs);
}
