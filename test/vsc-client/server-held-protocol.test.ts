// What the client of a server-held card (patent 003 [0096]) reads and writes: the `sign` session's messages
// (src/vsc-protocol/sign-messages.ts), the card's key kind wrapped under the enrollment token (enrollment-wrap.ts),
// and the protected information that carries the server's public key instead of a seed (protected-information-codec.ts).
// Encode, decode, round trip, hand-built bytes, tables of malformed inputs, and fuzzing of every decoder.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clonePivState } from '../../src/apdu/index.js';
import { concatBytes, toHex, utf8 } from '../../src/bytes/index.js';
import {
  ProtectedInformationError, decodeProtectedInformation, encodeProtectedInformation, newProtectedInformation, readCardKey, readCardKind, readCardPublicKey,
  readCounter, readSigningSeed, updateProtectedInformation, type ProtectedInformation,
} from '../../src/card/index.js';
import { chacha20Poly1305Encrypt, ed25519KeyFromSeed, sha256 } from '../../src/crypto/index.js';
import { VscError } from '../../src/errors/index.js';
import {
  MESSAGE_SCHEMAS, MESSAGE_TYPES, ProtocolError, SESSION_OPERATIONS, SIGN_SCHEMAS, WRAPPED_CARD_KEY_LENGTH, decodeChallenge, decodeHello, decodeSignChallenge,
  decodeSignProof, decodeSignResult, encodeChallenge, encodeHello, encodeRefusal, encodeSignChallenge, encodeSignProof, encodeSignResult, enrollmentTokenHash,
  noCardKeyToWrap, unwrapCardKey, wrapCardKey, type Challenge, type SignProof,
} from '../../src/vsc-protocol/index.js';
import { testPivState } from '../support/piv-fixture.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const CHALLENGE: Challenge = { salt: bytes(4, 16), memoryKiB: 65536, iterations: 3, parallelism: 1, ri1: bytes(5), keyfileKey: bytes(6) };
const PROOF: SignProof = { ri2: bytes(2), masterProof: bytes(3), muk: bytes(11), holderSecret: bytes(12), h: bytes(13) };
const RESULT = { counter: (1n << 100n) + 7n, signature: bytes(14, 64) };

function protocolError(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).message;
  }
  throw new Error('expected a ProtocolError');
}

describe('the sign session\'s messages', () => {
  it('a hello may name "sign" beside the card operations; nothing else', () => {
    expect(SESSION_OPERATIONS).toContain('sign');
    expect(decodeHello(encodeHello({ operation: 'sign', serial: 'HELD-1' }))).toEqual({ operation: 'sign', serial: 'HELD-1' });
    expect(protocolError(() => encodeHello({ operation: 'sigh' as 'sign', serial: 'HELD-1' }))).toMatch(/expected "operation" as one of .*sign/);
  });

  it('encodes the proof as type byte, the implementation proofs, MUK (20), holder secret (22), h (50): hand-built frame', () => {
    const encoded = encodeSignProof({ ri2: bytes(2), muk: bytes(11), holderSecret: bytes(12), h: bytes(13) });
    const field = (tag: number, value: Uint8Array) => [tag, 0, 0, 0, value.length, ...value];
    expect(Array.from(encoded)).toEqual([MESSAGE_TYPES.proof, ...field(2, bytes(2)), ...field(20, bytes(11)), ...field(22, bytes(12)), ...field(50, bytes(13))]);
  });

  it('round trips challenge, proof and result; the decoded proof\'s fields are copies; a refusal decodes in place of an answer', () => {
    expect(decodeSignChallenge(encodeSignChallenge(CHALLENGE))).toEqual({ refused: false, message: CHALLENGE });
    // The same challenge as every operation but enroll: either side may read it with the other's schema.
    expect(decodeChallenge('extend', encodeSignChallenge(CHALLENGE))).toEqual({ refused: false, message: CHALLENGE });
    const encoded = encodeSignProof(PROOF);
    const decoded = decodeSignProof(encoded);
    expect(decoded).toEqual(PROOF);
    encoded.fill(0);
    expect(decoded.holderSecret).toEqual(bytes(12));
    expect(decodeSignResult(encodeSignResult(RESULT))).toEqual({ refused: false, message: RESULT });
    const refusal = encodeRefusal({ reason: 'holder-mismatch', message: 'this machine and process do not hold card HELD-1' });
    expect(decodeSignResult(refusal)).toEqual({ refused: true, refusal: { reason: 'holder-mismatch', message: 'this machine and process do not hold card HELD-1' } });
    expect(decodeSignChallenge(refusal).refused).toBe(true);
  });

  it('every schema has unique tags in ascending order', () => {
    for (const schema of Object.values(SIGN_SCHEMAS)) {
      const tags = schema.fields.map((field) => field.tag);
      expect(tags).toEqual([...new Set(tags)].sort((a, b) => a - b));
    }
    const enroll = MESSAGE_SCHEMAS.challenge.enroll.fields.map((field) => field.tag);
    expect(enroll).toEqual([...new Set(enroll)].sort((a, b) => a - b));
  });

  const cases: [string, () => unknown, RegExp][] = [
    ['h of 31 bytes', () => encodeSignProof({ ...PROOF, h: bytes(1, 31) }), /sign proof: expected "h" as 32 bytes, got 31 bytes/],
    ['no h', () => encodeSignProof({ ...PROOF, h: undefined } as never), /expected field "h", got none/],
    ['no holder secret', () => decodeSignProof(encodeSignProof(PROOF).subarray(0, 1 + 3 * 37)), /expected field "holderSecret", got none/],
    ['a signature of 63 bytes', () => encodeSignResult({ ...RESULT, signature: bytes(1, 63) }), /expected "signature" as 64 bytes, got 63 bytes/],
    ['a counter of 2^128', () => encodeSignResult({ ...RESULT, counter: 1n << 128n }), /expected "counter" as an integer in 0\.\.2\^128-1/],
    ['an insert proof for a sign proof', () => decodeSignProof(Uint8Array.from([MESSAGE_TYPES.proof, 1, 0, 0, 0, 32, ...bytes(1)])), /sign proof: expected a known field tag, got unknown tag 1/],
    ['a result as a proof', () => decodeSignProof(encodeSignResult(RESULT)), /expected message type 3, got 4/],
    ['trailing bytes', () => decodeSignResult(concatBytes(encodeSignResult(RESULT), Uint8Array.of(0))), /expected a 5-byte field header/],
    ['an unknown field', () => encodeSignProof({ ...PROOF, authKey: bytes(1) } as never), /unexpected field "authKey"/],
  ];
  it.each(cases)('refuses %s', (_, action, expected) => {
    expect(protocolError(action)).toMatch(expected);
  });

  it('random and mutated bytes only ever decode or throw ProtocolError', () => {
    const decoders = [decodeSignChallenge, decodeSignProof, decodeSignResult];
    const valid = [encodeSignChallenge(CHALLENGE), encodeSignProof(PROOF), encodeSignResult(RESULT)];
    const outcome = (decode: (input: Uint8Array) => unknown, input: Uint8Array): void => {
      try {
        decode(input);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(2), (input, which) => outcome(decoders[which]!, input)), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.nat(2), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(2), fc.boolean(), (which, at, value, decoder, cut) => {
        const input = valid[which]!.slice();
        const position = at % input.length;
        input[position] = value;
        outcome(decoders[decoder]!, cut ? input.subarray(0, position) : input);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the card\'s key kind in the enroll challenge, wrapped under the enrollment token', () => {
  const TOKEN = 'a-one-time-enrollment-token';
  const RI1 = bytes(0x21);
  const publicKey = ed25519KeyFromSeed(bytes(0x31)).publicKey;

  it('round trips both kinds for the token\'s holder; the challenge carries it beside the card id', () => {
    const held = wrapCardKey(enrollmentTokenHash(TOKEN), 'HELD-1', RI1, { kind: 'server-held', publicKey });
    expect(held).toHaveLength(WRAPPED_CARD_KEY_LENGTH);
    expect(unwrapCardKey(TOKEN, 'HELD-1', RI1, held)).toEqual({ kind: 'server-held', publicKey });
    const soft = wrapCardKey(enrollmentTokenHash(TOKEN), 'SOFT-1', RI1, { kind: 'software' });
    expect(unwrapCardKey(TOKEN, 'SOFT-1', RI1, soft)).toEqual({ kind: 'software' });
    const challenge = { ...CHALLENGE, wrappedCardId: bytes(7, 32), wrappedCardKey: held };
    expect(decodeChallenge('enroll', encodeChallenge('enroll', challenge))).toEqual({ refused: false, message: challenge });
    // An older server sends no kind: still a valid challenge.
    const older = { ...CHALLENGE, wrappedCardId: bytes(7, 32) };
    expect(decodeChallenge('enroll', encodeChallenge('enroll', older))).toEqual({ refused: false, message: older });
  });

  it('a wrong token, another serial, another challenge or random bytes are refused as a wrong token (exit 4), the kind unread', () => {
    const held = wrapCardKey(enrollmentTokenHash(TOKEN), 'HELD-1', RI1, { kind: 'server-held', publicKey });
    for (const attempt of [
      () => unwrapCardKey('another-token-of-enough-length', 'HELD-1', RI1, held),
      () => unwrapCardKey(TOKEN, 'HELD-2', RI1, held),
      () => unwrapCardKey(TOKEN, 'HELD-1', bytes(0x22), held),
      () => unwrapCardKey(TOKEN, 'HELD-1', RI1, noCardKeyToWrap()),
    ]) {
      expect(attempt).toThrow(VscError);
      expect(attempt).toThrow(/wrong enrollment token, or card HELD-1 awaits no enrollment|wrong enrollment token, or card HELD-2 awaits no enrollment/);
    }
    expect(noCardKeyToWrap()).toHaveLength(WRAPPED_CARD_KEY_LENGTH);
  });

  it('a kind byte it does not know is a ProtocolError, even under the right token', () => {
    // Built as the server would wrap it (domain-separated key from the token's hash, nonce from ri1, serial as AD).
    const key = sha256(concatBytes(utf8('vsc-enroll-card-key/1\0'), enrollmentTokenHash(TOKEN)));
    for (const plain of [concatBytes(Uint8Array.of(2), publicKey), concatBytes(Uint8Array.of(0), publicKey)]) {
      const wrapped = chacha20Poly1305Encrypt(key, RI1.subarray(0, 12), utf8('HELD-1'), plain);
      expect(protocolError(() => unwrapCardKey(TOKEN, 'HELD-1', RI1, wrapped))).toMatch(/expected the card's key kind as 00 \(client-generated\) or 01 \(server-held\)/);
    }
  });
});

describe('protected information of a server-held card: the public key in place of the seed', () => {
  const publicKey = ed25519KeyFromSeed(bytes(0x41)).publicKey;
  const info = (): ProtectedInformation => ({ signingSeed: new Uint8Array(0), serverHeldPublicKey: publicKey.slice(), counter: 0x0102n, piv: clonePivState(testPivState()) });

  it('encodes field 03 (the public key, 32 bytes) where a seed would be, and the same sizes as a card with a seed', () => {
    const encoded = encodeProtectedInformation(info());
    expect(toHex(encoded.subarray(1, 6))).toBe('0300000020'); // tag 03, length 32
    expect(toHex(encoded.subarray(6, 38))).toBe(toHex(publicKey));
    expect(encoded.length).toBe(encodeProtectedInformation({ ...info(), signingSeed: bytes(9), serverHeldPublicKey: undefined } as ProtectedInformation).length);
  });

  it('decodes, reads its kind and key, keeps them through updates; a seed reader refuses it', () => {
    const encoded = encodeProtectedInformation(info());
    const decoded = decodeProtectedInformation(encoded);
    expect(decoded.serverHeldPublicKey).toEqual(publicKey);
    expect(decoded.signingSeed).toHaveLength(0);
    expect(readCardKind(encoded)).toBe('server-held');
    expect(readCardKey(encoded)).toEqual({ kind: 'server-held', publicKey });
    expect(readCardPublicKey(encoded)).toEqual(publicKey);
    expect(() => readSigningSeed(encoded)).toThrow(/server-held: its signing seed stays on its VSC server/);
    const updated = updateProtectedInformation(encoded, { counter: 99n });
    expect(readCardKind(updated)).toBe('server-held');
    expect(readCounter(updated)).toBe(99n);
    expect(toHex(readCardPublicKey(updated))).toBe(toHex(publicKey));
  });

  it('a new card\'s information for a server-held key has no seed at all', () => {
    const fresh = newProtectedInformation({ serverHeldPublicKey: publicKey });
    expect(fresh.signingSeed).toHaveLength(0);
    const encoded = encodeProtectedInformation(fresh);
    expect(readCardKind(encoded)).toBe('server-held');
    const software = encodeProtectedInformation(newProtectedInformation());
    expect(readCardKind(software)).toBe('software');
    const seed = readSigningSeed(software);
    expect(readCardPublicKey(software)).toEqual(ed25519KeyFromSeed(seed).publicKey);
  });

  const malformed: [string, () => unknown, RegExp][] = [
    ['a seed beside the public key', () => encodeProtectedInformation({ ...info(), signingSeed: bytes(1) }), /expected no signing seed beside a server-held card's public key, got 32 bytes/],
    ['a public key of 31 bytes', () => encodeProtectedInformation({ ...info(), serverHeldPublicKey: bytes(1, 31) }), /expected a 32-byte server-held public key, got 31/],
    ['field 03 of 31 bytes', () => {
      const encoded = encodeProtectedInformation(info());
      return decodeProtectedInformation(concatBytes(encoded.subarray(0, 5), Uint8Array.of(31), encoded.subarray(6, 37), encoded.subarray(38)));
    }, /expected the server-held public key to be 32 bytes, got 31/],
    ['field 04 in the key\'s place', () => {
      const encoded = encodeProtectedInformation(info());
      encoded[1] = 0x04;
      return decodeProtectedInformation(encoded);
    }, /expected the fields signing seed, counter, PIV part in that order/],
  ];
  it.each(malformed)('refuses %s', (_, action, expected) => {
    expect(action).toThrow(ProtectedInformationError);
    expect(action).toThrow(expected);
  });

  it('mutated server-held information decodes or throws ProtectedInformationError, never anything else', () => {
    const valid = encodeProtectedInformation(info());
    fc.assert(fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, value, cut) => {
      const input = valid.slice();
      const position = at % input.length;
      input[position] = value;
      try {
        decodeProtectedInformation(cut ? input.subarray(0, position) : input);
        readCardKind(cut ? input.subarray(0, position) : input);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtectedInformationError);
      }
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (input) => {
      try {
        readCardKey(concatBytes(Uint8Array.of(1), input));
      } catch (error) {
        expect(error).toBeInstanceOf(ProtectedInformationError);
      }
    }), { numRuns: 1000 });
  });
});
