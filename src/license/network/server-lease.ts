// One seat leased from one network license server (Wibu 002 Table 1, network / floating license), as a program holds
// it: the lease is believed only when its record checks out, a use of 0 units of exactly this product and these
// features, fresh, signed by a card the program's licensor bound (card-binding.ts); it is kept by heartbeats.
import { toHex } from '../../bytes/index.js';
import { verifyRecord, type AuditRecord, type TrustRoot } from '../../rental/index.js';
import { verifyCardBinding } from '../card-binding.js';
import { LicenseError } from '../license-error.js';
import { CLOCK_TOLERANCE_SECONDS, type UnixSeconds } from '../license-model.js';
import { licensorDigest, parseLicenseRecordText, type UseRecordText } from '../license-record-text.js';
import { callLicenseServer } from './network-http.js';
import { bindingFromWire, recordFromWire } from './record-wire.js';

export interface SeatRequest {
  readonly licensorKey: Uint8Array;
  readonly productCode: number;
  readonly features: number;
  /** This program's name at the servers: asking again with it gives back the same seat. */
  readonly client: string;
  readonly user?: string;
}

export interface LeaseContext {
  readonly timeoutMs: number;
  readonly now: () => UnixSeconds;
}

const LEASE_KEYS = ['leaseId', 'expiresAt', 'heartbeatSeconds', 'record', 'overflow', 'binding'];

function whole(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw new LicenseError('input', `lease: expected ${name} as a whole number in ${min}..${max}`);
  return value;
}

export class ServerLease {
  #expiresAt: UnixSeconds;

  private constructor(
    readonly server: string, readonly leaseId: string, expiresAt: UnixSeconds, readonly heartbeatSeconds: number, readonly overflow: boolean,
    readonly record: AuditRecord, readonly card: TrustRoot, private readonly context: LeaseContext,
  ) {
    this.#expiresAt = expiresAt;
  }

  /** Takes a seat on `server`: refusals are LicenseError ('seats', 'expired' ...), no answer LicenseServerUnavailableError. */
  static async acquire(server: string, request: SeatRequest, context: LeaseContext): Promise<ServerLease> {
    const now = context.now();
    const answer = await callLicenseServer(server, 'POST', '/v1/seats', {
      licensorKey: toHex(request.licensorKey), productCode: request.productCode, features: request.features, client: request.client, hostTime: now,
      ...(request.user === undefined ? {} : { user: request.user }),
    }, context.timeoutMs);
    if (Object.keys(answer).length !== LEASE_KEYS.length || LEASE_KEYS.some((key) => !(key in answer))) throw new LicenseError('input', `lease: expected exactly ${LEASE_KEYS.join(', ')}`);
    const leaseId = answer['leaseId'];
    if (typeof leaseId !== 'string' || !/^[0-9a-f]{24}$/.test(leaseId)) throw new LicenseError('input', 'lease: expected leaseId as 24 lowercase hex digits');
    if (typeof answer['overflow'] !== 'boolean') throw new LicenseError('input', 'lease: expected overflow as true or false');
    const { record, card } = checkAllocation(answer, request, now);
    return new ServerLease(server, leaseId, whole(answer['expiresAt'], 'expiresAt', 0, 2 ** 40), whole(answer['heartbeatSeconds'], 'heartbeatSeconds', 1, 86_400), answer['overflow'], record, card, context);
  }

  get expiresAt(): UnixSeconds {
    return this.#expiresAt;
  }

  /** Whether the server still counts the seat as ours by the last time it said so. */
  get current(): boolean {
    return this.context.now() < this.#expiresAt;
  }

  async heartbeat(): Promise<void> {
    const answer = await callLicenseServer(this.server, 'POST', `/v1/seats/${this.leaseId}/heartbeat`, undefined, this.context.timeoutMs);
    this.#expiresAt = whole(answer['expiresAt'], 'expiresAt', 0, 2 ** 40);
  }

  /** Gives the seat back; a server that does not answer frees it anyway once heartbeats stop. */
  async release(): Promise<void> {
    this.#expiresAt = 0;
    await callLicenseServer(this.server, 'DELETE', `/v1/seats/${this.leaseId}`, undefined, this.context.timeoutMs).catch(() => undefined);
  }
}

/**
 * The allocation record of a lease: its binding signed by the program's licensor, the record by that card,
 * naming this licensor, product and features, 0 units, at a time within CLOCK_TOLERANCE_SECONDS of this host's clock.
 */
export function checkAllocation(answer: Record<string, unknown>, request: Pick<SeatRequest, 'licensorKey' | 'productCode' | 'features'>, now: UnixSeconds): { record: AuditRecord; card: TrustRoot; text: UseRecordText } {
  const binding = bindingFromWire(answer['binding'], 'lease binding');
  verifyCardBinding(binding, request.licensorKey);
  const card: TrustRoot = { publicKey: binding.cardPublicKey, serial: binding.serial, keyMode: binding.keyMode };
  const record = recordFromWire(answer['record'], 'lease record');
  if (!verifyRecord(record, card)) throw new LicenseError('signature', `the lease's record was not signed by card ${binding.serial}, which the licensor bound`);
  let text;
  try {
    text = parseLicenseRecordText(record.text);
  } catch (error) {
    throw new LicenseError('signature', 'the lease\'s record is no use record of the license applet', { cause: error });
  }
  if (text.kind !== 'use' || text.licensor !== licensorDigest(request.licensorKey) || text.productCode !== request.productCode || text.features !== request.features || text.units !== 0) {
    throw new LicenseError('signature', `the lease's record is not the allocation of product ${request.productCode} with features ${request.features}: ${record.text}`);
  }
  if (Math.abs(text.at - now) > CLOCK_TOLERANCE_SECONDS) throw new LicenseError('signature', `the lease's record was signed at ${text.at}, not now (${now}): an old record, or clocks ${Math.abs(text.at - now)} s apart`);
  return { record, card, text };
}
