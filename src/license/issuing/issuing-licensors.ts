// Licensors of the issuing back end (Wibu 000 §2.2 firm items, 002 back-end issuing): `vsc license licensor add` makes
// one (name, firm code, a fresh Ed25519 key sealed under the data directory's key, an API key), and every licensor
// route authenticates its API key: "vsclk_ID_SECRET" (SECRET 64 hex), of which the database keeps SHA-256(SECRET) only,
// compared in constant time. The key is shown once, to be written to a 0600 file; it is never logged or audited.
import { randomBytes } from 'node:crypto';
import { constantTimeEqual, fromHex, toHex, utf8, wipe } from '../../bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256 } from '../../crypto/index.js';
import { MAX_CODE } from '../license-model.js';
import { appendAudit, checkName, licensorRecord, seedBinding, type Caller, type IssuingBackend, type LicensorRecord } from './issuing-backend.js';
import { issuingTransaction, whole } from './issuing-database.js';
import { refuse } from './issuing-refusal.js';

const API_KEY = /^vsclk_([1-9][0-9]{0,15})_([0-9a-f]{64})$/;

export interface NewLicensor {
  readonly licensor: { readonly id: number; readonly name: string; readonly firmCode: number; readonly publicKey: Uint8Array };
  /** The API key: shown this once. */
  readonly apiKey: string;
}

/** Adds a licensor; its name, firm code and key are unique in the back end (409 'input' otherwise). */
export async function addLicensor(backend: IssuingBackend, spec: { readonly name: string; readonly firmCode: number }, caller: Caller = { actor: 'administrator' }): Promise<NewLicensor> {
  const name = checkName(spec.name, 'a licensor name');
  if (!Number.isInteger(spec.firmCode) || spec.firmCode < 0 || spec.firmCode > MAX_CODE) throw refuse.input(`expected a firm code in 0..${MAX_CODE}, got ${String(spec.firmCode)}`);
  const seed = generateEd25519Seed();
  const secret = Uint8Array.from(randomBytes(32));
  try {
    const publicKey = ed25519KeyFromSeed(seed).publicKey;
    const sealedSeed = backend.sealer.seal('licensor-seed', seedBinding(spec.firmCode, publicKey), seed);
    const id = await issuingTransaction(backend.database, async (tx) => {
      const clash = await tx.selectFrom('issuing_licensors').select(['name', 'firm_code']).where((eb) => eb.or([eb('name', '=', name), eb('firm_code', '=', spec.firmCode)])).executeTakeFirst();
      if (clash !== undefined) throw refuse.conflict('input', clash.name === name ? `a licensor named ${JSON.stringify(name)} exists already` : `firm code ${spec.firmCode} belongs to another licensor`);
      const row = await tx.insertInto('issuing_licensors').values({
        name, firm_code: spec.firmCode, public_key: publicKey, sealed_seed: sealedSeed, api_key_hash: sha256(secret), created_at: backend.now(),
      }).returning('id').executeTakeFirstOrThrow();
      const made = whole(row.id);
      await appendAudit(backend, tx, caller, { licensorId: made, action: 'licensor.add', subject: `firm ${spec.firmCode}`, outcome: 'ok', detail: `licensor ${name}, key ${toHex(publicKey)}` });
      return made;
    });
    return { licensor: { id, name, firmCode: spec.firmCode, publicKey }, apiKey: `vsclk_${id}_${toHex(secret)}` };
  } finally {
    wipe(seed, secret);
  }
}

/** A hash to compare against when the key names no licensor, so that the answer takes as long either way. */
const NOBODY = sha256(utf8('vsc-license-issuing: no such licensor'));

/** The licensor an `Authorization: Bearer vsclk_...` header names and proves, or 401 'unauthenticated'. */
export async function authenticateLicensor(backend: IssuingBackend, authorization: string | undefined): Promise<LicensorRecord> {
  const match = typeof authorization === 'string' ? /^Bearer (\S{1,200})$/.exec(authorization) : null;
  const key = match === null ? null : API_KEY.exec(match[1]!);
  if (key === null) throw refuse.unauthenticated('expected an Authorization: Bearer header with a licensor API key');
  const id = Number(key[1]);
  const secret = fromHex(key[2]!);
  const row = await backend.database.db.selectFrom('issuing_licensors').selectAll().where('id', '=', id).executeTakeFirst();
  const licensor = row === undefined ? undefined : licensorRecord(row);
  const proven = constantTimeEqual(sha256(secret), licensor?.apiKeyHash ?? NOBODY);
  wipe(secret);
  if (licensor === undefined || !proven) throw refuse.unauthenticated('the API key is not valid');
  return licensor;
}

/** The licensors, for `vsc license licensor list` and tests: public fields only. */
export async function listLicensors(backend: IssuingBackend): Promise<Array<{ id: number; name: string; firmCode: number; publicKey: Uint8Array }>> {
  const rows = await backend.database.db.selectFrom('issuing_licensors').selectAll().orderBy('id').execute();
  return rows.map((row) => ({ id: whole(row.id), name: row.name, firmCode: whole(row.firm_code), publicKey: Uint8Array.from(row.public_key) }));
}
