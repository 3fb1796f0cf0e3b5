// A typed HTTP client of the issuing back end (Wibu 002 back-end license issuing): one method per route, over node's
// fetch. A refusal comes back as the service's LicenseError (IssuingRefusal: status, reason, message, Retry-After); a
// service that cannot be reached, fails (5xx) or answers something else than its API is IssuingUnavailableError.
import { toHex } from '../../bytes/index.js';
import { ExitCode, VscError } from '../../errors/index.js';
import { licenseBodyDigest, parseSignedBody } from '../license-update.js';
import type { SignedAnswer, TicketView } from './issuing-activations.js';
import type { AuditRecordView, DefinedProduct, Order, ProductDefinition } from './issuing-orders.js';
import type { ReceiptAnswer } from './issuing-receipts.js';
import { IssuingRefusal, isLicenseReason, type RefusalDetails } from './issuing-refusal.js';
import { activationRequestJson, deactivationRequestJson, receiptRequestJson, timeRequestJson, type ActivationRequest, type DeactivationRequest, type ReceiptRequest, type TimeRequest } from './issuing-requests.js';
import { auditAnswer, orderAnswer, productAnswer, receiptAnswer, signedAnswer, ticketAnswer, timeAnswer } from './issuing-schemas.js';
import type { TimeAnswer } from './issuing-time.js';
import type { AlertView } from './issuing-alerts.js';
import type { CheckpointAnswer } from './issuing-checkpoints.js';
import type { LockView } from './issuing-locks.js';
import {
  checkpointRequestJson, proofRequestJson, reactivationRequestJson, restoreRequestJson, type CheckpointRequest, type ProofRequest, type ReactivationRequest, type RestoreRequest,
} from './issuing-lost-requests.js';
import { alertAnswer, alertsAnswer, checkpointAnswer, locksAnswer, policyAnswer, restoreAnswer, transferAnswer, transferredAnswer } from './issuing-lost-schemas.js';
import type { RestoreAnswer } from './issuing-restores.js';
import type { TransferAnswer, TransferredAnswer } from './issuing-transfers.js';
import { checkShape, type Shape } from './json-shape.js';

export const DEFAULT_CLIENT_TIMEOUT_MS = 30_000;
/** Largest answer read (an audit page of 1000 records fits easily). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

export class IssuingUnavailableError extends VscError {
  override readonly name = 'IssuingUnavailableError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('license.unavailable', message, { ...options, exitCode: ExitCode.other });
  }
}

export interface IssuingClientOptions {
  /** The service's URL, e.g. http://127.0.0.1:8710 (what `vsc license serve` prints). */
  readonly server: string;
  /** A licensor's API key, for the licensor routes. */
  readonly apiKey?: string;
  readonly timeoutMs?: number;
}

/** An answered update must parse and be the one its digest names. */
function checkDigest(update: string, digest: string): void {
  let computed: string;
  try {
    computed = toHex(licenseBodyDigest(parseSignedBody(update)));
  } catch (error) {
    throw new IssuingUnavailableError(`the issuing service answered an update that does not parse: ${(error as Error).message}`, { cause: error });
  }
  if (computed !== digest) throw new IssuingUnavailableError('the issuing service answered an update whose digest is not the one it named');
}

/** The details beside a refusal's reason that have the expected types; anything else is left out. */
function refusalDetails(value: { lockSequence?: unknown; alert?: unknown; dueAt?: unknown } | null): RefusalDetails {
  const details: { lockSequence?: string; alert?: number; dueAt?: number } = {};
  if (typeof value?.lockSequence === 'string' && value.lockSequence.length <= 16_384) details.lockSequence = value.lockSequence;
  if (Number.isSafeInteger(value?.alert)) details.alert = value!.alert as number;
  if (Number.isSafeInteger(value?.dueAt)) details.dueAt = value!.dueAt as number;
  return details;
}

export class IssuingClient {
  readonly #base: URL;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: IssuingClientOptions) {
    let base: URL;
    try {
      base = new URL(options.server);
    } catch {
      throw new VscError('license.input', 'expected the issuing service\'s URL as http://HOST:PORT or https://HOST:PORT', { exitCode: ExitCode.usage });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new VscError('license.input', `expected an http or https URL, got ${base.protocol}`, { exitCode: ExitCode.usage });
    this.#base = base;
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
  }

  async #call(method: 'GET' | 'POST' | 'PUT', path: string, answer: Shape | undefined, body?: unknown, licensor = false): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (licensor) {
      if (this.#apiKey === undefined) throw new IssuingRefusal(401, 'unauthenticated', 'this call needs a licensor API key');
      headers['authorization'] = `Bearer ${this.#apiKey}`;
    }
    const url = new URL(path, this.#base);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'error' });
      text = await response.text();
    } catch (error) {
      throw new IssuingUnavailableError(`the issuing service at ${this.#base.origin} cannot be reached: ${(error as Error).message}`, { cause: error });
    }
    if (text.length > MAX_ANSWER_BYTES) throw new IssuingUnavailableError(`the issuing service answered more than ${MAX_ANSWER_BYTES} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new IssuingUnavailableError(`the issuing service answered HTTP ${response.status} with something that is not JSON`);
    }
    if (!response.ok) {
      const refused = value as { error?: { reason?: unknown; message?: unknown }; lockSequence?: unknown; alert?: unknown; dueAt?: unknown } | null;
      const error = refused?.error;
      if (response.status < 500 && isLicenseReason(error?.reason) && typeof error.message === 'string') {
        const retry = Number(response.headers.get('retry-after'));
        throw new IssuingRefusal(response.status, error.reason, error.message.slice(0, 1000), Number.isSafeInteger(retry) && retry > 0 ? retry : undefined, refusalDetails(refused));
      }
      throw new IssuingUnavailableError(`the issuing service failed (HTTP ${response.status})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new IssuingUnavailableError('the issuing service answered something else than a JSON object');
    try {
      if (answer !== undefined) checkShape(answer, value, 'answer');
    } catch (error) {
      throw new IssuingUnavailableError(`the issuing service answered something else than its API: ${(error as Error).message}`, { cause: error });
    }
    return value as Record<string, unknown>;
  }

  /** POST /v1/products (licensor). */
  async defineProduct(definition: ProductDefinition): Promise<DefinedProduct> {
    const answer = await this.#call('POST', '/v1/products', productAnswer, definition, true);
    return answer['product'] as DefinedProduct;
  }

  /** POST /v1/orders (licensor): the order's ticket codes. */
  async placeOrder(order: Order): Promise<{ orderId: string; tickets: string[] }> {
    return (await this.#call('POST', '/v1/orders', orderAnswer, order, true)) as { orderId: string; tickets: string[] };
  }

  /** GET /v1/audit (licensor). */
  async audit(query: { after?: number; limit?: number } = {}): Promise<AuditRecordView[]> {
    const search = new URLSearchParams();
    if (query.after !== undefined) search.set('after', String(query.after));
    if (query.limit !== undefined) search.set('limit', String(query.limit));
    const suffix = search.size === 0 ? '' : `?${search.toString()}`;
    return (await this.#call('GET', `/v1/audit${suffix}`, auditAnswer, undefined, true))['records'] as AuditRecordView[];
  }

  /** GET /v1/tickets/:ticket. */
  async ticket(code: string): Promise<TicketView> {
    return (await this.#call('GET', `/v1/tickets/${encodeURIComponent(code)}`, ticketAnswer)) as unknown as TicketView;
  }

  async #signed(path: string, body: Record<string, unknown>): Promise<SignedAnswer> {
    const answer = (await this.#call('POST', path, signedAnswer, body)) as unknown as SignedAnswer;
    checkDigest(answer.update, answer.digest);
    if (answer.withdrawal !== undefined) checkDigest(answer.withdrawal.update, answer.withdrawal.digest);
    return answer;
  }

  /** POST /v1/activations: the signed update for the container. */
  activate(request: ActivationRequest): Promise<SignedAnswer> {
    return this.#signed('/v1/activations', activationRequestJson(request));
  }

  /** POST /v1/receipts: the card-signed record of the applied update. */
  async receipt(request: ReceiptRequest): Promise<ReceiptAnswer> {
    return (await this.#call('POST', '/v1/receipts', receiptAnswer, receiptRequestJson(request))) as unknown as ReceiptAnswer;
  }

  /** POST /v1/deactivations: the signed delete-product. */
  deactivate(request: DeactivationRequest): Promise<SignedAnswer> {
    return this.#signed('/v1/deactivations', deactivationRequestJson(request));
  }

  /** POST /v1/time: a time certificate from the licensor of the firm code. */
  async time(request: TimeRequest): Promise<TimeAnswer> {
    return (await this.#call('POST', '/v1/time', timeAnswer, timeRequestJson(request))) as unknown as TimeAnswer;
  }

  /** PUT /v1/restore-policy (licensor): the restore policy, reactivation rules and honey-pot setting (issuing-policies.ts JSON). */
  setRestorePolicy(policy: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#call('PUT', '/v1/restore-policy', policyAnswer, policy, true);
  }

  /** GET /v1/restore-policy (licensor). */
  restorePolicy(): Promise<Record<string, unknown>> {
    return this.#call('GET', '/v1/restore-policy', policyAnswer, undefined, true);
  }

  /** POST /v1/restores: the signed update that restores a backed-up firm item onto the target (000 §2.2). */
  async restore(request: RestoreRequest): Promise<RestoreAnswer> {
    const answer = (await this.#call('POST', '/v1/restores', restoreAnswer, restoreRequestJson(request))) as unknown as RestoreAnswer;
    checkDigest(answer.update, answer.digest);
    return answer;
  }

  /** POST /v1/transfers: the delete-firm for the source (000 §2.12). */
  async transfer(request: RestoreRequest): Promise<TransferAnswer> {
    const answer = (await this.#call('POST', '/v1/transfers', transferAnswer, restoreRequestJson(request))) as unknown as TransferAnswer;
    checkDigest(answer.deleteUpdate, answer.deleteDigest);
    return answer;
  }

  /** POST /v1/transfers/:id/proof: the source card's record of the delete; the update for the target. */
  async proveTransfer(id: number, proof: ProofRequest): Promise<TransferredAnswer> {
    const answer = (await this.#call('POST', `/v1/transfers/${id}/proof`, transferredAnswer, proofRequestJson(proof))) as unknown as TransferredAnswer;
    checkDigest(answer.update, answer.digest);
    return answer;
  }

  /** GET /v1/locks (licensor): the local locking list. */
  async locks(): Promise<LockView[]> {
    return (await this.#call('GET', '/v1/locks', locksAnswer, undefined, true))['locks'] as LockView[];
  }

  /** GET /v1/alerts (licensor). */
  async alerts(): Promise<AlertView[]> {
    return (await this.#call('GET', '/v1/alerts', alertsAnswer, undefined, true))['alerts'] as AlertView[];
  }

  /** POST /v1/alerts/:id/approve (licensor). */
  async approveAlert(id: number): Promise<AlertView> {
    return (await this.#call('POST', `/v1/alerts/${id}/approve`, alertAnswer, undefined, true))['alert'] as AlertView;
  }

  /** POST /v1/reactivations (001). */
  reactivate(request: ReactivationRequest): Promise<SignedAnswer> {
    return this.#signed('/v1/reactivations', reactivationRequestJson(request));
  }

  /** POST /v1/checkpoints (001 checkpoint licenses). */
  async checkpoint(request: CheckpointRequest): Promise<CheckpointAnswer> {
    const answer = (await this.#call('POST', '/v1/checkpoints', checkpointAnswer, checkpointRequestJson(request))) as unknown as CheckpointAnswer;
    checkDigest(answer.update, answer.digest);
    if (answer.withdrawal !== undefined) checkDigest(answer.withdrawal.update, answer.withdrawal.digest);
    return answer;
  }

  /** GET /openapi.json. */
  async openApi(): Promise<Record<string, unknown>> {
    return this.#call('GET', '/openapi.json', undefined);
  }
}
