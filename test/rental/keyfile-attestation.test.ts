// A keyfile's card kind from a card attestation (patent 003 [0096]: the vendor "may wish to validate the smart card
// manufacturer and/or personalizer"; DESIGN.md "Software rental", trust model): a trusted attestation about this very
// card makes it `token` or `server-held` and the keyfile records the attester key; a forged, untrusted or mismatching
// attestation is refused, never downgraded; without one the card is `software`, which a keyfile accepting only
// attested kinds refuses; a universal key ([0098]-[0102]) only on a token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromUtf8, toHex, utf8 } from '../../src/bytes/index.js';
import { issueCardAttestation, type CardAttestationClaims } from '../../src/card-attestation/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { attestedCard, createKeyfile, readKeyfileUnchecked, verifyKeyfile, type KeyfileInput } from '../../src/rental/rental-keyfile.js';
import { closeVendor, initVendor, openVendor, type VendorKeys } from '../../src/rental/vendor.js';
import { thrown } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-keyfile-attestation-'));
let vendor: VendorKeys;
const attester = ed25519KeyFromSeed(generateEd25519Seed());
const cardKey = ed25519KeyFromSeed(generateEd25519Seed());
const card = { serial: 'CARD-7', publicKey: cardKey.publicKey, keyMode: 'individual' as const };
const claims: CardAttestationClaims = { ...card, kind: 'server-held', attester: 'VSC server vsc.example.org', issuedAt: '2026-11-28T12:00:00.000Z' };
const ATTESTED_ONLY = ['token', 'server-held'] as const;

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('pw'));
  vendor = await openVendor(join(root, 'vendor'), utf8('pw'));
}, 30_000);
afterAll(() => {
  closeVendor(vendor);
  rmSync(root, { recursive: true, force: true });
});

const input = (over: Partial<KeyfileInput> & Pick<KeyfileInput, 'card'>): KeyfileInput => ({ program: 'WP', offset: 0n, acceptedKinds: [...ATTESTED_ONLY], ...over });

describe('the card kind from an attestation ([0096])', () => {
  it('a trusted attestation of this card makes it server-held; the keyfile names the attester key it relied on', async () => {
    const attested = attestedCard(card, await issueCardAttestation(attester, claims), [attester.publicKey]);
    expect(attested).toMatchObject({ serial: 'CARD-7', kind: 'server-held' });
    expect(toHex(attested.attesterKey!)).toBe(toHex(attester.publicKey));
    const keyfile = verifyKeyfile(createKeyfile(vendor, input({ card: attested, attesterKey: attested.attesterKey! }), { decoyBits: 0 }), vendor.signingKey);
    expect(keyfile.card.kind).toBe('server-held');
    expect(toHex(keyfile.attesterKey!)).toBe(toHex(attester.publicKey));
    expect(keyfile.acceptedKinds).toEqual(['token', 'server-held']);
  });

  it('an emulated card (no attestation) is software, and a keyfile accepting only attested kinds refuses it (exit 3)', () => {
    const plain = attestedCard(card, undefined, [attester.publicKey]);
    expect(plain.kind).toBe('software');
    const error = thrown(() => createKeyfile(vendor, input({ card: plain }), { decoyBits: 0 }));
    expect(error).toMatchObject({ code: 'keyfile.card-kind', exitCode: ExitCode.refusedByState, message: expect.stringMatching(/kind software, which this keyfile would not accept/) });
  });

  it('a forged attestation is refused, whatever it claims', async () => {
    const forger = ed25519KeyFromSeed(generateEd25519Seed());
    const selfSigned = await issueCardAttestation(forger, claims);
    expect(thrown(() => attestedCard(card, selfSigned, [attester.publicKey]))).toMatchObject({ code: 'attestation.untrusted', exitCode: 3 });
    const genuine = JSON.parse(fromUtf8(await issueCardAttestation(attester, claims))) as Record<string, unknown>;
    const upgraded = utf8(JSON.stringify({ ...genuine, kind: 'token' }));
    expect(thrown(() => attestedCard(card, upgraded, [attester.publicKey]))).toMatchObject({ code: 'attestation.forged', exitCode: 3 });
    expect(thrown(() => attestedCard(card, utf8('{"format":"vsc-card-attestation/1"}'), [attester.publicKey]))).toMatchObject({ code: 'attestation.malformed' });
    const trustedByNobody = await issueCardAttestation(attester, claims);
    expect(thrown(() => attestedCard(card, trustedByNobody, []))).toMatchObject({ code: 'attestation.untrusted', message: expect.stringMatching(/no attester key is trusted/) });
  });

  it('an attestation of another card is refused: another serial, another key, another key mode', async () => {
    const other = ed25519KeyFromSeed(generateEd25519Seed());
    const cases: Array<Partial<CardAttestationClaims>> = [{ serial: 'CARD-8' }, { publicKey: other.publicKey }, { keyMode: 'universal', kind: 'token' }];
    for (const change of cases) {
      const file = await issueCardAttestation(attester, { ...claims, ...change });
      expect(thrown(() => attestedCard(card, file, [attester.publicKey])), JSON.stringify(Object.keys(change))).toMatchObject({ code: 'attestation.mismatch', exitCode: 3 });
    }
  });
});

describe('a universal key only on a token ([0098]-[0102]; DESIGN.md "Software rental")', () => {
  it('a universal-key card is accepted as token, and refused as software or server-held', async () => {
    const universal = { ...card, keyMode: 'universal' as const };
    const token = attestedCard(universal, await issueCardAttestation(attester, { ...claims, keyMode: 'universal', kind: 'token' }), [attester.publicKey]);
    expect(token.kind).toBe('token');
    expect(verifyKeyfile(createKeyfile(vendor, input({ card: token, attesterKey: token.attesterKey! }), { decoyBits: 0 }), vendor.signingKey).card.keyMode).toBe('universal');
    const software = thrown(() => createKeyfile(vendor, input({ card: { ...universal, kind: 'software' }, acceptedKinds: ['software', 'token'] }), { decoyBits: 0 }));
    expect(software).toMatchObject({ code: 'keyfile.card-kind', message: expect.stringMatching(/universal-key card is accepted only as kind token .* forge every customer's trail/) });
  });

  it('an attested kind needs its attester key, a software card has none; validator keys are 32 bytes, each once', () => {
    const server = { ...card, kind: 'server-held' as const };
    expect(thrown(() => createKeyfile(vendor, input({ card: server }), { decoyBits: 0 }))).toMatchObject({ code: 'keyfile.input', exitCode: ExitCode.usage });
    expect(thrown(() => createKeyfile(vendor, input({ card: { ...card, kind: 'software' }, acceptedKinds: ['software'], attesterKey: attester.publicKey }), { decoyBits: 0 }))).toMatchObject({ code: 'keyfile.input' });
    const soft = input({ card: { ...card, kind: 'software' }, acceptedKinds: ['software'] });
    expect(thrown(() => createKeyfile(vendor, { ...soft, validatorKeys: [new Uint8Array(31)] }, { decoyBits: 0 }))).toMatchObject({ code: 'keyfile.input' });
    expect(thrown(() => createKeyfile(vendor, { ...soft, validatorKeys: [attester.publicKey, attester.publicKey] }, { decoyBits: 0 }))).toMatchObject({ message: 'expected each validator key once' });
    const keyfile = readKeyfileUnchecked(createKeyfile(vendor, { ...soft, validatorKeys: [attester.publicKey, cardKey.publicKey] }, { decoyBits: 0 }));
    expect(keyfile.validatorKeys.map(toHex)).toEqual([toHex(attester.publicKey), toHex(cardKey.publicKey)]);
    expect(keyfile.attesterKey).toBeUndefined();
    expect(thrown(() => createKeyfile(vendor, { ...soft, validatorKeys: [attester.publicKey, cardKey.publicKey] }, { decoyBits: 0 }))).toBeUndefined();
  });
});
