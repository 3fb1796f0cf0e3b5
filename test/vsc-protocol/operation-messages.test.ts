// The operation messages' binary schema (src/vsc-protocol/operation-messages.ts, message-codec.ts):
// encode, decode and round trip of every message of every operation, a hand-built frame checked byte
// for byte, a table of malformed inputs, and a fuzz asserting decode only returns or throws ProtocolError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_OPERATION_MESSAGE_BYTES, MAX_SEALED_BYTES, MESSAGE_SCHEMAS, MESSAGE_TYPES, OPERATIONS, OperationRefused,
  ProtocolError, REFUSALS, decodeChallenge, decodeHello, decodeProof, decodeRefusal, decodeResult, encodeChallenge,
  encodeHello, encodeProof, encodeRefusal, encodeResult, refusalExitCode, type Challenge, type Operation, type Proof,
  type Result,
} from '../../src/vsc-protocol/index.js';
import { ExitCode } from '../../src/errors/index.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const BASE = { ri2: bytes(2), masterProof: bytes(3) };
const OWNER = { ...BASE, authKey: bytes(1) };

const CHALLENGES: Record<Operation, Challenge> = Object.fromEntries(
  OPERATIONS.map((operation) => [operation, { salt: bytes(4, 16), memoryKiB: 65536, iterations: 3, parallelism: 1, ri1: bytes(5), keyfileKey: bytes(6), ...(operation === 'enroll' ? { wrappedCardId: bytes(7, 32) } : {}) }]),
) as Record<Operation, Challenge>;

const PROOFS: { [O in Operation]: Proof<O> } = {
  enroll: { ...OWNER, muk: bytes(11), token: 'abcdefghijklmnop_-12', sealed: bytes(8, 100), publicKey: bytes(9) },
  insert: { ...OWNER, installId: 'laptop-1', keyfileProof: bytes(10), muk: bytes(11), holderSecret: bytes(12) },
  extend: { ...BASE, muk: bytes(11), holderSecret: bytes(13) },
  remove: { ...BASE, muk: bytes(11), holderSecret: bytes(13), sealed: bytes(8, MAX_SEALED_BYTES), sealedVersion: 7n, nextCounter: (1n << 128n) - 1n },
  recover: { ...OWNER, muk: bytes(11) },
  destroy: { ...OWNER, muk: bytes(11) },
  unblock: { ...BASE, recoveryCode: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567' },
};

const RESULTS: { [O in Operation]: Result<O> } = {
  enroll: { recoveryCode: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567' },
  insert: { cardId: bytes(7, 16), sealed: bytes(8, 10), sealedVersion: 1n, windowStart: 0n, windowEnd: 1n << 20n },
  extend: { windowStart: 1n << 20n, windowEnd: 2n << 20n },
  remove: {},
  recover: {},
  destroy: {},
  unblock: {},
};

/** Runs `action` and returns its ProtocolError's message. */
function protocolError(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).message;
  }
  throw new Error('expected a ProtocolError');
}

describe('hello', () => {
  it('encodes to type byte, then tag, 4-byte length, value per field (hand-built frame)', () => {
    const encoded = encodeHello({ operation: 'insert', serial: 'S1' });
    // 01 = hello; 01 00000006 "insert"; 02 00000002 "S1"
    expect(Array.from(encoded)).toEqual([1, 1, 0, 0, 0, 6, ...new TextEncoder().encode('insert'), 2, 0, 0, 0, 2, 0x53, 0x31]);
    expect(decodeHello(encoded)).toEqual({ operation: 'insert', serial: 'S1' });
  });

  it('round trips every operation', () => {
    for (const operation of OPERATIONS) expect(decodeHello(encodeHello({ operation, serial: `CARD-${operation}` }))).toEqual({ operation, serial: `CARD-${operation}` });
  });

  it('refuses to encode what the schema would refuse', () => {
    expect(protocolError(() => encodeHello({ operation: 'insert', serial: '-bad' }))).toMatch(/expected "serial" as text matching/);
    expect(protocolError(() => encodeHello({ operation: 'steal' as Operation, serial: 'S1' }))).toMatch(/expected "operation" as one of/);
  });
});

describe.each(OPERATIONS)('%s messages', (operation) => {
  it('challenge round trips', () => {
    const decoded = decodeChallenge(operation, encodeChallenge(operation, CHALLENGES[operation]));
    expect(decoded).toEqual({ refused: false, message: CHALLENGES[operation] });
  });

  it('proof round trips, and its byte fields are copies', () => {
    const encoded = encodeProof(operation, PROOFS[operation]);
    expect(encoded[0]).toBe(MESSAGE_TYPES.proof);
    const decoded = decodeProof(operation, encoded);
    expect(decoded).toEqual(PROOFS[operation]);
    encoded.fill(0);
    expect(decoded.ri2).toEqual(bytes(2));
    if ('authKey' in decoded) expect(decoded.authKey).toEqual(bytes(1));
  });

  it('result round trips', () => {
    expect(decodeResult(operation, encodeResult(operation, RESULTS[operation]))).toEqual({ refused: false, message: RESULTS[operation] });
  });

  it('a refusal decodes in place of a challenge or a result', () => {
    const refusal = encodeRefusal({ reason: 'busy', message: 'card S1 is busy with another operation; try again' });
    expect(decodeChallenge(operation, refusal)).toEqual({ refused: true, refusal: { reason: 'busy', message: 'card S1 is busy with another operation; try again' } });
    expect(decodeResult(operation, refusal)).toEqual({ refused: true, refusal: { reason: 'busy', message: 'card S1 is busy with another operation; try again' } });
  });

  it('a proof of another operation is refused', () => {
    const other = operation === 'insert' ? 'remove' : 'insert';
    expect(() => decodeProof(operation, encodeProof(other, PROOFS[other] as never))).toThrow(ProtocolError);
  });
});

describe('refusal', () => {
  it('round trips every reason, and OperationRefused carries the exit code of its reason', () => {
    for (const reason of REFUSALS) {
      expect(decodeRefusal(encodeRefusal({ reason, message: `why: ${reason}` }))).toEqual({ reason, message: `why: ${reason}` });
      const refused = new OperationRefused(reason, 'no');
      expect(refused.code).toBe(`server.${reason}`);
      expect(refused.exitCode).toBe(refusalExitCode(reason));
    }
    expect(refusalExitCode('muk-mismatch')).toBe(ExitCode.mukMismatch);
  });
});

describe('malformed messages', () => {
  const hello = encodeHello({ operation: 'insert', serial: 'S1' });
  const recover = encodeProof('recover', PROOFS.recover);
  const field = (tag: number, value: Uint8Array): Uint8Array => Uint8Array.from([tag, ...[24, 16, 8, 0].map((shift) => (value.length >>> shift) & 0xff), ...value]);
  const frame = (type: number, ...fields: Uint8Array[]): Uint8Array => Uint8Array.from([type, ...fields.flatMap((part) => Array.from(part))]);
  const HELLO_OP = field(1, new TextEncoder().encode('insert'));
  const HELLO_SERIAL = field(2, new TextEncoder().encode('S1'));

  const cases: [string, () => unknown, RegExp][] = [
    ['empty', () => decodeHello(new Uint8Array(0)), /expected a message type byte, got an empty message/],
    ['wrong type byte', () => decodeHello(Uint8Array.from([MESSAGE_TYPES.proof, ...hello.subarray(1)])), /expected message type 1, got 3/],
    ['truncated header', () => decodeHello(hello.subarray(0, hello.length - 5)), /expected a 5-byte field header at offset 12, got 2 bytes/],
    ['truncated value', () => decodeHello(hello.subarray(0, hello.length - 1)), /expected 2 bytes of "serial", got 1/],
    ['trailing bytes', () => decodeHello(Uint8Array.from([...hello, 0])), /expected a 5-byte field header/],
    ['trailing field', () => decodeHello(frame(1, HELLO_OP, HELLO_SERIAL, HELLO_SERIAL)), /got "serial" again or out of order/],
    ['missing field', () => decodeHello(frame(1, HELLO_OP)), /expected field "serial", got none/],
    ['missing first field', () => decodeHello(frame(1, HELLO_SERIAL)), /expected field "operation", got none/],
    ['duplicate field', () => decodeHello(frame(1, HELLO_OP, HELLO_OP, HELLO_SERIAL)), /got "operation" again or out of order/],
    ['fields out of order', () => decodeHello(frame(1, HELLO_SERIAL, HELLO_OP)), /expected field "operation", got none/],
    ['unknown field', () => decodeHello(frame(1, HELLO_OP, HELLO_SERIAL, field(9, bytes(0, 1)))), /got unknown tag 9/],
    ['unknown operation', () => decodeHello(frame(1, field(1, new TextEncoder().encode('steal')), HELLO_SERIAL)), /expected "operation" as one of/],
    ['serial not matching', () => decodeHello(frame(1, HELLO_OP, field(2, new TextEncoder().encode('a b')))), /expected "serial" as text matching/],
    ['invalid UTF-8', () => decodeHello(frame(1, HELLO_OP, field(2, Uint8Array.from([0xc3])))), /expected "serial" as UTF-8 text, got invalid UTF-8/],
    ['wrong key length', () => decodeProof('recover', Uint8Array.from([...recover.subarray(0, 2), 0, 0, 0, 31, ...recover.subarray(6, 6 + 31)])), /expected "authKey" as 32 bytes, got 31/],
    ['wrong u128 length', () => decodeResult('extend', frame(4, field(40, bytes(0, 15)), field(41, bytes(0, 16)))), /expected "windowStart" as 16 bytes, got 15/],
    ['KDF memory out of bounds', () => decodeChallenge('insert', frame(2, field(1, bytes(0, 16)), field(2, Uint8Array.from([0, 0, 0, 1])))), /expected "memoryKiB" as an integer in 65536\.\.1048576, got 1/],
    ['sealed too big', () => encodeProof('remove', { ...PROOFS.remove, sealed: bytes(0, MAX_SEALED_BYTES + 1) }), /expected "sealed" as 1 to 49152 bytes, got 49153 bytes/],
    ['oversize message', () => decodeHello(new Uint8Array(MAX_OPERATION_MESSAGE_BYTES + 1).fill(1)), /expected at most 61440 bytes, got 61441/],
    ['length beyond the message', () => decodeHello(frame(1, Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff]))), /expected 4294967295 bytes of "operation", got 0/],
    ['encode with an unknown field', () => encodeProof('destroy', { ...PROOFS.destroy, holderSecret: bytes(1) } as never), /unexpected field "holderSecret"/],
    ['encode without a required field', () => encodeProof('recover', { ...OWNER } as never), /expected field "muk", got none/],
    ['a proof of the owner without its auth key', () => encodeProof('insert', { ...PROOFS.insert, authKey: undefined } as never), /expected field "authKey", got none/],
    ['a challenge without its wrapped card id at enroll', () => encodeChallenge('enroll', CHALLENGES.insert), /expected field "wrappedCardId", got none/],
    ['a refusal with two lines', () => encodeRefusal({ reason: 'busy', message: 'a\nb' }), /expected "message" as text matching/],
  ];

  it.each(cases)('%s', (_, action, expected) => {
    expect(protocolError(action)).toMatch(expected);
  });

  it('never echoes a secret it refuses', () => {
    const message = protocolError(() => encodeProof('recover', { ...PROOFS.recover, authKey: bytes(0xab, 31) }));
    expect(message).toBe('recover proof: expected "authKey" as 32 bytes, got 31 bytes');
  });

  it('leaves the input unchanged', () => {
    const input = Uint8Array.from([...hello, 0]);
    const copy = input.slice();
    expect(() => decodeHello(input)).toThrow(ProtocolError);
    expect(input).toEqual(copy);
  });
});

describe('fuzz', () => {
  const decoders: ((input: Uint8Array) => unknown)[] = [
    decodeHello, decodeRefusal,
    ...OPERATIONS.flatMap((operation) => [(input: Uint8Array) => decodeChallenge(operation, input), (input: Uint8Array) => decodeProof(operation, input), (input: Uint8Array) => decodeResult(operation, input)]),
  ];
  const valid = [encodeHello({ operation: 'remove', serial: 'S1' }), ...OPERATIONS.flatMap((operation) => [encodeChallenge(operation, CHALLENGES[operation]), encodeResult(operation, RESULTS[operation] as never)]), encodeProof('recover', PROOFS.recover)];

  const outcome = (decode: (input: Uint8Array) => unknown, input: Uint8Array): void => {
    try {
      decode(input);
    } catch (error) {
      expect(error).toBeInstanceOf(ProtocolError);
    }
  };

  it('decode of random bytes returns or throws ProtocolError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(decoders.length - 1), (input, which) => outcome(decoders[which]!, input)), { numRuns: 2000 });
  });

  it('decode of a valid message with bytes flipped, cut or appended returns or throws ProtocolError', () => {
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(decoders.length - 1), fc.boolean(), (which, at, value, decoder, cut) => {
        const input = valid[which]!.slice();
        const position = at % input.length;
        input[position] = value;
        outcome(decoders[decoder]!, cut ? input.subarray(0, position) : input);
      }),
      { numRuns: 2000 },
    );
  });

  it('every schema has unique tags in ascending order', () => {
    const schemas = [MESSAGE_SCHEMAS.hello, MESSAGE_SCHEMAS.refused, ...OPERATIONS.flatMap((operation) => [MESSAGE_SCHEMAS.challenge[operation], MESSAGE_SCHEMAS.proof[operation], MESSAGE_SCHEMAS.result[operation]])];
    for (const schema of schemas) {
      const tags = schema.fields.map((field) => field.tag);
      expect(tags).toEqual([...new Set(tags)].sort((a, b) => a - b));
    }
  });
});
