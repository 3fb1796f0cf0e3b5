import { describe, expect, it } from 'vitest';
import { fromUtf8, utf8 } from '../../src/bytes/index.js';
import {
  AttestationError, attestationMessage, checkAttestationFor, issueCardAttestation, readCardAttestation, verifyCardAttestation, type CardAttestationClaims,
} from '../../src/card-attestation/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';

const attester = ed25519KeyFromSeed(generateEd25519Seed());
const card = ed25519KeyFromSeed(generateEd25519Seed());
const claims: CardAttestationClaims = {
  serial: 'CARD-0001', publicKey: card.publicKey, keyMode: 'individual', kind: 'server-held', attester: 'VSC server test', issuedAt: '2026-11-28T12:00:00.000Z',
};

function code(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AttestationError);
    return (error as AttestationError).code;
  }
  throw new Error('expected an AttestationError');
}

/** The file with one JSON field replaced. */
function edited(bytes: Uint8Array, field: string, value: unknown): Uint8Array {
  return utf8(JSON.stringify({ ...JSON.parse(fromUtf8(bytes)), [field]: value }));
}

describe('card attestations (DESIGN.md "Software rental", trust model; 003 [0096])', () => {
  it('round-trips and verifies against the attester key the vendor trusts', async () => {
    const file = await issueCardAttestation(attester, claims);
    const read = readCardAttestation(file);
    expect(read).toMatchObject({ serial: 'CARD-0001', kind: 'server-held', keyMode: 'individual', attester: 'VSC server test' });
    expect(read.publicKey).toEqual(card.publicKey);
    expect(() => verifyCardAttestation(read, [attester.publicKey])).not.toThrow();
    expect(() => checkAttestationFor(read, { serial: 'CARD-0001', publicKey: card.publicKey, keyMode: 'individual' })).not.toThrow();
  });

  it('refuses an attester nobody named (untrusted) and every modified claim (forged)', async () => {
    const file = await issueCardAttestation(attester, claims);
    const other = ed25519KeyFromSeed(generateEd25519Seed());
    expect(code(() => verifyCardAttestation(readCardAttestation(file), [other.publicKey]))).toBe('attestation.untrusted');
    const changes: Array<[string, unknown]> = [
      ['serial', 'CARD-0002'], ['publicKey', Buffer.from(other.publicKey).toString('hex')], ['kind', 'token'], ['attester', 'someone else'], ['issuedAt', '2026-11-29T12:00:00.000Z'],
    ];
    for (const [field, value] of changes) {
      expect(code(() => verifyCardAttestation(readCardAttestation(edited(file, field, value)), [attester.publicKey])), field).toBe('attestation.forged');
    }
    // A self-signed forgery: a key the vendor does not trust, whatever it claims.
    const forged = await issueCardAttestation(other, claims);
    expect(code(() => verifyCardAttestation(readCardAttestation(forged), [attester.publicKey]))).toBe('attestation.untrusted');
    const swapped = edited(forged, 'attesterKey', Buffer.from(attester.publicKey).toString('hex'));
    expect(code(() => verifyCardAttestation(readCardAttestation(swapped), [attester.publicKey]))).toBe('attestation.forged');
  });

  it('is about one card: another serial, key or key mode is a mismatch', async () => {
    const read = readCardAttestation(await issueCardAttestation(attester, claims));
    expect(code(() => checkAttestationFor(read, { serial: 'CARD-0002', publicKey: card.publicKey, keyMode: 'individual' }))).toBe('attestation.mismatch');
    expect(code(() => checkAttestationFor(read, { serial: 'CARD-0001', publicKey: attester.publicKey, keyMode: 'individual' }))).toBe('attestation.mismatch');
    expect(code(() => checkAttestationFor(read, { serial: 'CARD-0001', publicKey: card.publicKey, keyMode: 'universal' }))).toBe('attestation.mismatch');
  });

  it('signs a message in which no field can bleed into the next', () => {
    const a = attestationMessage({ ...claims, serial: 'AB', attester: 'C' }, attester.publicKey);
    const b = attestationMessage({ ...claims, serial: 'A', attester: 'BC' }, attester.publicKey);
    expect(a).not.toEqual(b);
  });

  it('refuses bad claims at issue and malformed files at read, fuzzed', async () => {
    await expect(issueCardAttestation(attester, { ...claims, kind: 'server-held', keyMode: 'universal' })).rejects.toThrow(/individual key/);
    await expect(issueCardAttestation(attester, { ...claims, serial: '' })).rejects.toThrow(/serial/);
    await expect(issueCardAttestation(attester, { ...claims, publicKey: new Uint8Array(31) })).rejects.toThrow(/32-byte/);
    await expect(issueCardAttestation(attester, { ...claims, issuedAt: 'yesterday' })).rejects.toThrow(/ISO 8601/);
    await expect(issueCardAttestation(attester, { ...claims, kind: 'software' as never })).rejects.toThrow(/kind/);
    const file = await issueCardAttestation(attester, claims);
    for (const bad of [new Uint8Array(0), utf8('[]'), utf8('null'), utf8('{"format":"x"}'), new Uint8Array(20_000)]) {
      expect(code(() => readCardAttestation(bad))).toBe('attestation.malformed');
    }
    for (const field of ['serial', 'publicKey', 'keyMode', 'kind', 'attester', 'issuedAt', 'attesterKey', 'signature']) {
      const hex = ['publicKey', 'attesterKey', 'signature'].includes(field);
      for (const value of [null, 7, '', [], {}, ...(hex ? ['zz', 'AB'.repeat(32), 'ab'] : [])]) {
        expect(code(() => readCardAttestation(edited(file, field, value))), `${field}=${JSON.stringify(value)}`).toBe('attestation.malformed');
      }
    }
    // Random byte flips: either malformed, or parsed and then refused; never believed.
    for (let i = 0; i < 300; i++) {
      const mutated = file.slice();
      mutated[Math.floor(Math.random() * mutated.length)]! ^= 1 + Math.floor(Math.random() * 255);
      let believed = false;
      try {
        const read = readCardAttestation(mutated);
        verifyCardAttestation(read, [attester.publicKey]);
        checkAttestationFor(read, { serial: claims.serial, publicKey: claims.publicKey, keyMode: claims.keyMode });
        believed = JSON.stringify(JSON.parse(fromUtf8(mutated))) !== JSON.stringify(JSON.parse(fromUtf8(file)));
      } catch (error) {
        expect(error).toBeInstanceOf(AttestationError);
      }
      expect(believed).toBe(false);
    }
  });
});
