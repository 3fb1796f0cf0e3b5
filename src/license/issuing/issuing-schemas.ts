// The JSON shapes of the issuing back end's routes (Wibu 002 back-end license issuing; license-update.ts for the update
// and product JSON): what fastify checks every body against (no extra fields, no type coercion), what GET /openapi.json
// describes, and what the offline request and receipt files are checked against.
import { MAX_CODE, MAX_TEXT_BYTES, MAX_UNITS } from '../license-model.js';
import { LICENSE_REASONS } from '../license-error.js';
import type { Shape } from './json-shape.js';
import { TICKET_PATTERN } from './ticket-code.js';

const hex = (bytes: number, description?: string): Shape => ({ type: 'string', pattern: `^[0-9a-f]{${bytes * 2}}$`, ...(description === undefined ? {} : { description }) });
const anyHex = (maxBytes: number): Shape => ({ type: 'string', pattern: '^([0-9a-f]{2})*$', maxLength: maxBytes * 2 });
const code = (description: string): Shape => ({ type: 'integer', minimum: 0, maximum: MAX_CODE, description });
const whole = (minimum: number, maximum: number, description?: string): Shape => ({ type: 'integer', minimum, maximum, ...(description === undefined ? {} : { description }) });
const seconds = (description?: string): Shape => whole(0, 2 ** 40, description);
/** Text without control characters (the card's texts, serials); their UTF-8 length is checked by the parsers. */
const text = (maxLength: number, description: string): Shape => ({ type: 'string', minLength: 1, maxLength, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description });
const str = (description?: string): Shape => ({ type: 'string', ...(description === undefined ? {} : { description }) });
const object = (properties: Record<string, Shape>, required: readonly string[], description?: string): Shape => ({
  type: 'object', additionalProperties: false, required, properties, ...(description === undefined ? {} : { description }),
});

/** The builders above, for the lost-license shapes (issuing-lost-schemas.ts). */
export const MAX_SERIAL_LENGTH = MAX_TEXT_BYTES;
export const MAX_ORDER_ITEMS = 100;
export const MAX_ORDER_QUANTITY = 10_000;
/** Tickets one order may make in all (quantity over maxActivations, summed over the items). */
export const MAX_ORDER_TICKETS = 1_000;

export const ticketShape: Shape = { type: 'string', pattern: TICKET_PATTERN, description: 'ticket code: 25 base32 characters in five groups' };
const serial = text(MAX_SERIAL_LENGTH, 'the container\'s (card\'s) serial number');
const requestId = hex(16, 'makes retries idempotent: the same request id gets the same answer');

/** The builders and field shapes above, for the lost-license shapes (issuing-lost-schemas.ts). */
export const shapeParts = { hex, anyHex, code, whole, seconds, text, object, str, serial, requestId } as const;

/** The template of a product: ProductSpec JSON (license-update.ts) with relative times and the issuing rules. */
export const templateShape: Shape = object({
  productCode: code('the product\'s code (default: the product\'s)'),
  text: text(MAX_TEXT_BYTES, 'the product\'s text (default: the product\'s)'),
  featureMap: code('feature bits the item unlocks (default 0)'),
  payment: { type: 'string', enum: ['prepaid', 'postpaid'], description: 'default prepaid' },
  licenseQuantity: whole(1, 100_000, 'seats of a network item (default 1)'),
  unitLimit: whole(0, MAX_UNITS, 'units (prepaid) or credit (postpaid); a renewal adds this many'),
  expiration: seconds('absolute expiration (or durationSeconds)'),
  activationTime: seconds('absolute activation time (or activationDelaySeconds)'),
  usagePeriodSeconds: whole(1, 2 ** 40),
  versions: object({ min: code('lowest version'), max: code('highest version') }, ['min', 'max']),
  maintenanceUntil: seconds(),
  namedUser: text(MAX_TEXT_BYTES, 'the named user'),
  boundTo: hex(32, 'digest of the computer or virtual machine'),
  countries: object({
    allow: { type: 'array', maxItems: 250, items: { type: 'string', pattern: '^[A-Z]{2}$' } },
    deny: { type: 'array', maxItems: 250, items: { type: 'string', pattern: '^[A-Z]{2}$' } },
  }, []),
  timeZones: object({ minOffsetMinutes: whole(-720, 840), maxOffsetMinutes: whole(-720, 840) }, ['minOffsetMinutes', 'maxOffsetMinutes']),
  overflow: object({ seats: whole(1, 100_000), until: seconds() }, ['seats']),
  maxBorrowSeconds: whole(1, 2 ** 40),
  standby: object({ kind: { type: 'string', enum: ['hot', 'cold'] }, maxSeconds: whole(1, 2 ** 40) }, ['kind', 'maxSeconds']),
  protectedData: anyHex(1024),
  hiddenData: anyHex(1024),
  secretData: anyHex(1024),
  durationSeconds: whole(1, 2 ** 32 - 1, 'expiration = activation time + duration; a renewal extends by it'),
  activationDelaySeconds: whole(0, 2 ** 32 - 1, 'activationTime = time of activation + delay'),
  maxActivations: whole(1, 100_000, 'activations per ticket (volume; default 1)'),
  maxDeactivations: whole(0, 100_000, 'deactivations of one ticket per cyclePeriodSeconds'),
  cyclePeriodSeconds: whole(1, 2 ** 32 - 1, 'the period maxDeactivations counts over'),
  checkpoint: object({
    validityDays: whole(1, 100_000, 'expiration = activation (or renewal) + validity'), thresholdDays: whole(0, 100_000, 'a renewal is due once fewer days remain'),
  }, ['validityDays', 'thresholdDays'], '001 checkpoint license: perpetual in business terms, renewed in the background (POST /v1/checkpoints)'),
}, [], 'ProductSpec JSON of license-update.ts with relative times and the issuing rules');

export const productBody: Shape = object({ code: code('product code'), text: text(MAX_TEXT_BYTES, 'product text'), template: templateShape }, ['code', 'text', 'template']);

export const orderBody: Shape = object({
  orderId: { type: 'string', pattern: '^[!-~]{1,128}$', description: 'the licensor\'s own order id (ERP, shop): the same id again answers the same tickets' },
  items: {
    type: 'array', minItems: 1, maxItems: MAX_ORDER_ITEMS,
    items: object({
      productCode: code('product code'),
      quantity: whole(1, MAX_ORDER_QUANTITY, 'seats (activations) bought'),
      renewalOf: { ...ticketShape, description: 'the ticket this item renews (subscription period or instalment)' },
    }, ['productCode', 'quantity']),
  },
}, ['orderId', 'items']);

export const auditQuery: Shape = object({
  after: { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$', description: 'only records after this id' },
  limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$', description: 'at most this many records (1..1000, default 100)' },
}, []);

export const ticketParams: Shape = object({ ticket: ticketShape }, ['ticket']);

export const activationBody: Shape = object({
  ticket: ticketShape,
  serial,
  cardPublicKey: hex(32, 'the card\'s Ed25519 public key (signs the receipt)'),
  firmUpdateCounter: { type: ['integer', 'null'], minimum: 0, maximum: 2 ** 32, description: 'the container\'s firm update counter of this licensor, null when it has no firm item of it' },
  requestId,
}, ['ticket', 'serial', 'cardPublicKey', 'firmUpdateCounter', 'requestId']);

export const recordShape: Shape = object({
  nonce: hex(16), text: { type: 'string', minLength: 1, maxLength: 512 }, counter: hex(16, 'the card\'s counter, 16 bytes'), signature: hex(64),
}, ['nonce', 'text', 'counter', 'signature'], 'a card-signed audit record (rental trail line, patent 003 [0056])');

export const receiptBody: Shape = object({
  ticket: { ...ticketShape, description: 'the activation\'s ticket; none for a restore, transfer, reactivation, checkpoint or withdrawal update' }, serial, record: recordShape,
}, ['serial', 'record']);

export const deactivationBody: Shape = object({
  ticket: ticketShape,
  serial,
  requestId,
  firmUpdateCounter: whole(0, 2 ** 32, 'the container\'s firm update counter (default: the counter after the last update issued to it)'),
}, ['ticket', 'serial', 'requestId']);

export const timeBody: Shape = object({ serial, firmCode: code('the licensor\'s firm code'), nonce: hex(16, 'the container\'s fresh nonce') }, ['serial', 'firmCode', 'nonce']);

// ---- answers (described in OpenAPI; the client checks what it uses) ----


export const errorAnswer: Shape = object({
  error: object({ reason: { type: 'string', enum: [...LICENSE_REASONS] }, message: str() }, ['reason', 'message']),
  lockSequence: str('423 locked: the central authority\'s lock sequence for the container (000 §2.10), when the hub has one'),
  alert: whole(1, Number.MAX_SAFE_INTEGER, '409 approval: the alert the request waits on for the licensor\'s approval'),
  dueAt: seconds('409 limit of a checkpoint renewal asked too early: when it is due'),
}, ['error']);

export const productAnswer: Shape = object({ product: object({ code: code('product code'), text: str(), template: templateShape }, ['code', 'text', 'template']) }, ['product']);
export const orderAnswer: Shape = object({ orderId: str(), tickets: { type: 'array', maxItems: MAX_ORDER_TICKETS, items: ticketShape } }, ['orderId', 'tickets']);
/** A license withdrawn from the asking container after its reactivation elsewhere (001): applied before the answer's update. */
export const withdrawalShape: Shape = object({ update: str('signed update for this container, to apply first (001 blacklisting)'), digest: hex(32) }, ['update', 'digest']);
export const signedAnswer: Shape = object({
  update: str('signed update file (license-update.ts)'), digest: hex(32, 'licenseBodyDigest of the update'),
  binding: str('an activation\'s answer: the licensor\'s card binding of the card (card-binding.ts), for its programs'),
  withdrawal: withdrawalShape,
}, ['update', 'digest']);
export const receiptAnswer: Shape = object({ state: { type: 'string', enum: ['confirmed', 'deactivated'] }, serial: str(), ticket: str('ticket reference') }, ['state', 'serial']);
export const timeAnswer: Shape = object({ certificate: str('signed time certificate (license-update.ts, kind time)'), time: seconds(), withdrawal: withdrawalShape }, ['certificate', 'time']);

const activationView: Shape = object({
  serial: str(), state: { type: 'string', enum: ['pending', 'confirmed', 'deactivating', 'deactivated'] }, digest: hex(32), createdAt: seconds(),
  expiration: seconds(),
}, ['serial', 'state', 'digest', 'createdAt']);
export const ticketAnswer: Shape = object({
  ticket: str('reference'), state: { type: 'string', enum: ['open', 'used', 'revoked'] }, quantity: whole(1, 100_000), renewalOf: str('reference'),
  product: object({ code: code('code'), text: str() }, ['code', 'text']),
  licensor: object({ name: str(), firmCode: code('firm code'), publicKey: hex(32) }, ['name', 'firmCode', 'publicKey']),
  activations: { type: 'array', maxItems: 100_000, items: activationView },
}, ['ticket', 'state', 'quantity', 'product', 'licensor', 'activations']);

const auditRecord: Shape = object({
  id: whole(1, Number.MAX_SAFE_INTEGER), at: seconds(), actor: str(), client: str(), action: str(), subject: str(), outcome: str(), detail: str(),
}, ['id', 'at', 'actor', 'action', 'subject', 'outcome']);
export const auditAnswer: Shape = object({ records: { type: 'array', maxItems: 1000, items: auditRecord } }, ['records']);
