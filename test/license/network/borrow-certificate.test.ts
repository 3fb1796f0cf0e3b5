// Borrow certificates (src/license/network/borrow-certificate.ts; Wibu 002 Table 1, borrowable license), checked
// offline: records signed by the card double's key stand for the license server's card.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkBorrowed, encodeBorrowCertificate, encodeCardBinding, formatBorrowRecordText, LicenseError, licensorDigest, parseBorrowCertificate,
  signCardBinding, borrowCardDigest, type BorrowCertificate,
} from '../../../src/license/index.js';
import type { TrustRoot } from '../../../src/rental/index.js';
import { FIRM_CODE, LICENSOR, OTHER_LICENSOR, T0 } from '../../support/index.js';
import { CardDouble } from './network-card-double.js';
import { reasonOf } from './network-test-servers.js';

const own: TrustRoot = { serial: 'LAPTOP-1', publicKey: new Uint8Array(32).fill(9), keyMode: 'individual' };
const UNTIL = T0 + 86_400;
const ID = '0a'.repeat(12);

async function issued(server = new CardDouble([]), text?: string): Promise<BorrowCertificate> {
  const record = await server.writeText(text ?? formatBorrowRecordText({ licensor: licensorDigest(LICENSOR.publicKey), firmCode: FIRM_CODE, productCode: 5, features: 1, card: borrowCardDigest(own), until: UNTIL, id: ID }));
  return { record, binding: (await server.bindings())[0]! };
}

const expectation = { licensorKey: LICENSOR.publicKey, productCode: 5, features: 1, now: T0, ownCard: own };

describe('borrow certificate', () => {
  it('round-trips its file form and checks offline until its end', async () => {
    const certificate = await issued();
    const text = encodeBorrowCertificate(certificate);
    expect(parseBorrowCertificate(text)).toEqual(certificate);
    expect(checkBorrowed(text, expectation)).toMatchObject({ id: ID, until: UNTIL, productCode: 5 });
    expect(await reasonOf(() => checkBorrowed(text, { ...expectation, now: UNTIL }))).toBe('expired');
  });

  it('refuses what its server\'s card did not sign as a borrow, or its licensor did not bind', async () => {
    const server = new CardDouble([]);
    const genuine = await issued(server);
    const stranger = new CardDouble([]);
    const strangerRecord = (await issued(stranger)).record;
    const cases: Array<[string, BorrowCertificate, string]> = [
      ['a record signed by another card', { ...genuine, record: strangerRecord }, 'signature'],
      ['a changed text', { ...genuine, record: { ...genuine.record, text: genuine.record.text.replace(String(UNTIL), String(UNTIL + 86_400)) } }, 'signature'],
      ['another counter', { ...genuine, record: { ...genuine.record, counter: genuine.record.counter + 1n } }, 'signature'],
      ['a signed text that is no borrow', await issued(server, `license use ${licensorDigest(LICENSOR.publicKey)} 1 5 features 1 units 0 left unlimited at ${T0}`), 'signature'],
      ['a binding by another licensor', { ...genuine, binding: signCardBinding(OTHER_LICENSOR, { serial: server.card.serial, cardPublicKey: server.card.publicKey, keyMode: 'individual' }) }, 'signature'],
      ['a binding with a forged signature', { ...genuine, binding: { ...genuine.binding, signature: new Uint8Array(64) } }, 'signature'],
      ['a borrow by another licensor', await issued(server, formatBorrowRecordText({ licensor: licensorDigest(OTHER_LICENSOR.publicKey), firmCode: 1, productCode: 5, features: 1, card: borrowCardDigest(own), until: UNTIL, id: ID })), 'no-license'],
    ];
    for (const [name, certificate, reason] of cases) {
      expect(await reasonOf(() => checkBorrowed(certificate, expectation)), name).toBe(reason);
      expect(await reasonOf(() => checkBorrowed(encodeBorrowCertificate(certificate), expectation)), `${name} (file form)`).toBe(reason);
    }
  });

  it('refuses a malformed file', async () => {
    const good = JSON.parse(encodeBorrowCertificate(await issued())) as Record<string, unknown>;
    const cases: Array<[string, string]> = [
      ['not JSON', '{'],
      ['a list', '[]'],
      ['another format', JSON.stringify({ ...good, format: 'vsc-license-borrow/2' })],
      ['an extra field', JSON.stringify({ ...good, more: 1 })],
      ['a record as text', JSON.stringify({ ...good, record: 'x' })],
      ['a record without a signature', JSON.stringify({ ...good, record: { ...(good['record'] as object), signature: undefined } })],
      ['a binding as an object', JSON.stringify({ ...good, binding: JSON.parse(good['binding'] as string) as unknown })],
      ['a binding of the wrong format', JSON.stringify({ ...good, binding: encodeCardBinding({ ...signCardBinding(LICENSOR, { serial: 'S', cardPublicKey: own.publicKey, keyMode: 'individual' }) }).replace('vsc-license-card/1', 'x') })],
      ['far too long', ' '.repeat(9_000)],
    ];
    for (const [name, text] of cases) expect(() => parseBorrowCertificate(text), name).toThrow(LicenseError);
    const text = JSON.stringify(good);
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.nat(text.length - 1).map((cut) => text.slice(0, cut))), (input) => {
      expect(() => parseBorrowCertificate(input)).toThrow(LicenseError);
    }));
  });
});
