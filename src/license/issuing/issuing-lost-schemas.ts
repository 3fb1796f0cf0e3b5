// The JSON shapes of the restoring service's routes (issue 17, lost licenses; Wibu 000 "CM-Box Backup" §2.2-2.12, 001
// reactivation, blacklisting, checkpoint licenses): what fastify checks every body against and GET /openapi.json
// describes. The backup item's own rules (record text, leaf, audit path) are the backup module's strict parser's.
import { MAX_ITEM_DATA_BYTES, MAX_PRODUCT_ITEMS_PER_FIRM } from '../license-model.js';
import { recordShape, shapeParts, ticketShape, withdrawalShape } from './issuing-schemas.js';
import type { Shape } from './json-shape.js';

const { hex, anyHex, code, whole, seconds, object, str, serial, requestId } = shapeParts;
const codes = (description: string): Shape => ({ type: 'array', maxItems: MAX_PRODUCT_ITEMS_PER_FIRM, items: code('product code'), description });
const id = (description: string): Shape => whole(1, Number.MAX_SAFE_INTEGER, description);
const idParams: Shape = object({ id: { type: 'string', pattern: '^[1-9][0-9]{0,15}$', description: 'the id' } }, ['id']);
const counter: Shape = { type: ['integer', 'null'], minimum: 0, maximum: 2 ** 32, description: 'the container\'s firm update counter of this licensor, null when it has no firm item of it' };
const cardKey = hex(32, 'the card\'s Ed25519 public key (signs the receipt)');
/** Largest body of a restore or transfer: a backup item file (backup-file.ts, at most 64 KiB) and the target. */
export const RESTORE_BODY_LIMIT = 160 * 1024;

// ---- policy (000 §2.3, §2.8, §2.11; 001 reactivation rules and honey pot) ----

export const reactivationRulesShape: Shape = object({
  maxPerPeriod: whole(0, 100_000, 'reactivations of one ticket per period (0: none)'),
  periodSeconds: whole(1, 2 ** 40, 'the period maxPerPeriod counts over'),
  approval: { type: 'string', enum: ['auto', 'manual'], description: 'manual: each reactivation waits for the licensor\'s approval' },
  blacklist: { type: 'string', enum: ['license', 'container'], description: 'at a reactivation on another device: withdraw the license from the old container, or lock the whole container' },
}, ['maxPerPeriod', 'periodSeconds', 'approval', 'blacklist'], '001 "Reactivating a License": the ISV defines the rules');

export const policyShape: Shape = object({
  mode: { type: 'string', enum: ['full', 'partial', 'none'], description: '000 §2.3: restore everything, the listed products, or nothing (the default)' },
  products: codes('partial: the product codes restored'),
  units: object({
    maxTimeSeconds: seconds('MaxUnitCounterRestoreTime'), maxDegreePercent: whole(0, 100, 'MaxUnitCounterRestoreDegree'),
    minTimeSeconds: seconds('MinUnitCounterRestoreTime'), minDegreePercent: whole(0, 100, 'MinUnitCounterRestoreDegree'),
  }, ['maxTimeSeconds', 'maxDegreePercent', 'minTimeSeconds', 'minDegreePercent'], '000 §2.3 unit counters by the backup\'s age'),
  secretData: object({
    mode: { type: 'string', enum: ['none', 'fixed', 'random', 'mixed'] }, fixed: anyHex(MAX_ITEM_DATA_BYTES), randomLength: whole(1, MAX_ITEM_DATA_BYTES),
  }, ['mode'], '000 §2.8: secret data is never in a backup'),
  alerts: object({
    intervalSeconds: whole(1, 2 ** 40), alertAt: whole(1, 1000, 'restores along one chain that alert the licensor'), stopAt: whole(1, 1000, 'restores along one chain that stop until approved'),
  }, ['intervalSeconds', 'alertAt', 'stopAt'], '000 §2.11 repeated-restore alerts'),
  reactivation: reactivationRulesShape,
  honeyPot: { type: 'boolean', description: '001: a withdrawn license becomes a honey-pot item (no features, protected data "honey-pot") instead of being deleted' },
}, ['mode', 'units', 'secretData', 'alerts'], 'the licensor\'s restore policy, reactivation rules and honey-pot setting');

export const policyAnswer: Shape = policyShape;

// ---- restores and transfers (000 §2.2, §2.6, §2.12) ----

/** A backup item file as JSON (backup-file.ts "vsc-license-backup-item/1"): one firm item of a card's signed backup. */
export const backupItemShape: Shape = object({
  format: { type: 'string', enum: ['vsc-license-backup-item/1'] },
  box: object({
    serial, cardPublicKey: cardKey, keyMode: { type: 'string', enum: ['individual', 'universal'] }, containerFormat: whole(1, 1),
  }, ['serial', 'cardPublicKey', 'keyMode', 'containerFormat']),
  record: object({
    nonce: hex(16), counter: { type: 'string', pattern: '^(0|[1-9][0-9]{0,38})$', description: 'the card\'s counter, decimal' }, signature: hex(64), text: { type: 'string', minLength: 1, maxLength: 512 },
  }, ['nonce', 'counter', 'signature', 'text'], 'the card-signed record "license backup items N root R at T"'),
  time: seconds('the backup time T'),
  treeSize: whole(1, 1_000_000, 'N, the leaves of the backup'),
  item: object({
    index: whole(0, 1_000_000), licensorKey: hex(32), firmCode: code('firm code'),
    leaf: { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: 96 * 1024, description: 'base64' },
    auditPath: { type: 'array', maxItems: 64, items: hex(32) },
  }, ['index', 'licensorKey', 'firmCode', 'leaf', 'auditPath']),
}, ['format', 'box', 'record', 'time', 'treeSize', 'item'], 'a backup item file (vsc-license-backup-item/1)');

export const targetShape: Shape = object({ serial, cardPublicKey: cardKey, firmUpdateCounter: counter }, ['serial', 'cardPublicKey', 'firmUpdateCounter'], 'the replacement container');

export const restoreBody: Shape = object({ item: backupItemShape, target: targetShape, requestId }, ['item', 'target', 'requestId']);

export const restoreAnswer: Shape = object({
  status: { type: 'string', enum: ['restored'] }, update: str('signed update file for the target'), digest: hex(32), binding: str('the licensor\'s card binding of the target card'),
  restored: codes('product codes restored'), skipped: codes('product codes the policy leaves out'), degreePercent: { type: 'number', minimum: 0, maximum: 100, description: 'unit counters restored, percent to two decimals (000 §2.3; the units are reckoned exactly)' },
}, ['status', 'update', 'digest', 'binding', 'restored', 'skipped', 'degreePercent']);

export const transferBody: Shape = restoreBody;
export const transferAnswer: Shape = object({
  transfer: id('the transfer'), deleteUpdate: str('signed delete-firm for the source container'), deleteDigest: hex(32),
}, ['transfer', 'deleteUpdate', 'deleteDigest']);
export const transferParams: Shape = idParams;
export const proofBody: Shape = object({ record: recordShape }, ['record'], 'the source card\'s record of applying the delete-firm');
export const transferredAnswer: Shape = object({
  status: { type: 'string', enum: ['transferred'] }, update: str('signed update file for the target'), digest: hex(32), binding: str(),
  restored: codes('product codes transferred'), skipped: codes('product codes the policy leaves out'),
}, ['status', 'update', 'digest', 'binding', 'restored', 'skipped']);

// ---- locks and alerts (000 §2.10, §2.11) ----

export const locksAnswer: Shape = object({
  locks: {
    type: 'array', maxItems: 100_000,
    items: object({
      serial: str(), reason: { type: 'string', enum: ['restore', 'reactivation'] }, subject: str(), createdAt: seconds(), reportedAt: seconds('when the hub took it'),
      lockSequence: str('the central lock sequence, once the hub made it'),
    }, ['serial', 'reason', 'subject', 'createdAt']),
  },
}, ['locks']);

const alertView: Shape = object({
  id: id('alert id'), kind: { type: 'string', enum: ['restore-chain', 'reactivation'] }, subject: str(), detail: str(), chain: whole(0, 100_000),
  state: { type: 'string', enum: ['notice', 'pending', 'approved', 'used'] }, createdAt: seconds(), updatedAt: seconds(),
}, ['id', 'kind', 'subject', 'detail', 'state', 'createdAt', 'updatedAt']);
export const alertsAnswer: Shape = object({ alerts: { type: 'array', maxItems: 100_000, items: alertView } }, ['alerts']);
export const alertParams: Shape = idParams;
export const alertAnswer: Shape = object({ alert: alertView }, ['alert']);

// ---- reactivation and checkpoint licenses (001) ----

export const reactivationBody: Shape = object({
  ticket: ticketShape, serial, cardPublicKey: cardKey, firmUpdateCounter: counter, requestId,
  reason: { type: 'string', enum: ['same-device', 'other-device'], description: 'same-device: the container was reset; other-device: the license moves to this container' },
}, ['ticket', 'serial', 'cardPublicKey', 'firmUpdateCounter', 'requestId', 'reason']);

export const checkpointBody: Shape = object({
  ticket: ticketShape, serial, firmUpdateCounter: whole(0, 2 ** 32, 'the container\'s firm update counter of this licensor'), requestId,
}, ['ticket', 'serial', 'firmUpdateCounter', 'requestId']);

export const checkpointAnswer: Shape = object({
  update: str('signed extend update'), digest: hex(32), expiration: seconds('the new expiration'), withdrawal: withdrawalShape,
}, ['update', 'digest', 'expiration']);
