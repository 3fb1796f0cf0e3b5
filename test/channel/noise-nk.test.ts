// Noise_NK_25519_ChaChaPoly_SHA256 against the published cacophony and snow vectors
// (vectors/noise-nk-vectors.json names its source), plus state, limit and fuzz checks.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ChannelError,
  encodeServerPublicKey,
  generateX25519KeyPair,
  NoiseHandshake,
  type NoiseTransport,
  x25519PublicKey,
} from '../../src/channel/index.js';
import { CipherState } from '../../src/channel/noise-cipher-state.js';
import { fromHex, toHex, utf8 } from '../../src/bytes/index.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_ephemeral: string;
  init_remote_static: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
  source: string;
}

const file = JSON.parse(readFileSync(new URL('./vectors/noise-nk-vectors.json', import.meta.url), 'utf8')) as { vectors: Vector[] };

function pair(prologue: Uint8Array = new Uint8Array(0)): { initiator: NoiseTransport; responder: NoiseTransport; hash: Uint8Array } {
  const server = generateX25519KeyPair();
  const initiator = NoiseHandshake.initiator({ remoteStatic: server.publicKey, prologue });
  const responder = NoiseHandshake.responder({ staticKeyPair: server, prologue });
  responder.readMessage(initiator.writeMessage(new Uint8Array(0)));
  initiator.readMessage(responder.writeMessage(new Uint8Array(0)));
  expect(toHex(initiator.handshakeHash)).toBe(toHex(responder.handshakeHash));
  return { initiator: initiator.split(), responder: responder.split(), hash: initiator.handshakeHash };
}

function expectChannelError(action: () => unknown, code?: string): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ChannelError);
    if (code !== undefined) expect((error as ChannelError).code).toBe(code);
    return;
  }
  throw new Error('expected a ChannelError, got no error');
}

describe('Noise NK test vectors', () => {
  it('the vector file holds only this protocol, with at least one handshake hash', () => {
    expect(file.vectors.length).toBeGreaterThanOrEqual(2);
    for (const v of file.vectors) expect(v.protocol_name).toBe('Noise_NK_25519_ChaChaPoly_SHA256');
    expect(file.vectors.some((v) => v.handshake_hash !== undefined)).toBe(true);
  });

  for (const v of file.vectors) {
    it(`matches every message byte for byte (${v.source})`, () => {
      const respStatic = fromHex(v.resp_static);
      expect(toHex(x25519PublicKey(respStatic))).toBe(v.init_remote_static);
      const initiator = NoiseHandshake.initiator({
        remoteStatic: fromHex(v.init_remote_static),
        prologue: fromHex(v.init_prologue),
        ephemeral: fromHex(v.init_ephemeral),
      });
      const responder = NoiseHandshake.responder({
        staticKeyPair: { privateKey: respStatic, publicKey: x25519PublicKey(respStatic) },
        prologue: fromHex(v.resp_prologue),
        ephemeral: fromHex(v.resp_ephemeral),
      });
      const [m0, m1, ...transport] = v.messages;
      if (m0 === undefined || m1 === undefined) throw new Error('vector without a handshake');

      const c0 = initiator.writeMessage(fromHex(m0.payload));
      expect(toHex(c0)).toBe(m0.ciphertext);
      expect(toHex(responder.readMessage(c0))).toBe(m0.payload);
      const c1 = responder.writeMessage(fromHex(m1.payload));
      expect(toHex(c1)).toBe(m1.ciphertext);
      expect(toHex(initiator.readMessage(c1))).toBe(m1.payload);

      expect(initiator.complete && responder.complete).toBe(true);
      expect(toHex(initiator.handshakeHash)).toBe(toHex(responder.handshakeHash));
      if (v.handshake_hash !== undefined) expect(toHex(initiator.handshakeHash)).toBe(v.handshake_hash);

      const i = initiator.split();
      const r = responder.split();
      transport.forEach((m, index) => {
        // Messages keep alternating: even ones initiator to responder, odd ones back.
        const [sender, receiver] = index % 2 === 0 ? [i, r] : [r, i];
        const ciphertext = sender.encrypt(fromHex(m.payload));
        expect(toHex(ciphertext)).toBe(m.ciphertext);
        expect(toHex(receiver.decrypt(ciphertext))).toBe(m.payload);
      });
      expect(transport.length).toBeGreaterThan(0);
    });
  }
});

describe('NoiseHandshake', () => {
  it('round trips with random keys and payloads and a prologue', () => {
    const { initiator, responder, hash } = pair(utf8('vsc-channel/1'));
    expect(hash.length).toBe(32);
    expect(toHex(responder.decrypt(initiator.encrypt(utf8('ping'))))).toBe(toHex(utf8('ping')));
    expect(toHex(initiator.decrypt(responder.encrypt(new Uint8Array(0))))).toBe('');
  });

  it('a wrong server key fails the handshake at message 1 on the responder', () => {
    const server = generateX25519KeyPair();
    const initiator = NoiseHandshake.initiator({ remoteStatic: generateX25519KeyPair().publicKey });
    const responder = NoiseHandshake.responder({ staticKeyPair: server });
    // Message 1's payload is empty, but after "es" it still carries a tag keyed by DH(e, rs).
    expectChannelError(() => responder.readMessage(initiator.writeMessage(new Uint8Array(0))), 'channel.handshake');
    expect(responder.complete).toBe(false);
    expectChannelError(() => responder.writeMessage(new Uint8Array(0)), 'channel.handshake');
  });

  it('a different prologue fails the handshake', () => {
    const server = generateX25519KeyPair();
    const initiator = NoiseHandshake.initiator({ remoteStatic: server.publicKey, prologue: utf8('a') });
    const responder = NoiseHandshake.responder({ staticKeyPair: server, prologue: utf8('b') });
    expectChannelError(() => responder.readMessage(initiator.writeMessage(new Uint8Array(0))), 'channel.handshake');
  });

  it.each([
    ['a short private key', () => x25519PublicKey(new Uint8Array(31).fill(0xab)), 'channel.key', 'expected a 32-byte X25519 private key, got 31 bytes'],
    ['a private key as a string', () => x25519PublicKey('ab'.repeat(32) as never), 'channel.key', 'expected a 32-byte X25519 private key, got a string'],
    ['a long server key', () => NoiseHandshake.initiator({ remoteStatic: new Uint8Array(33).fill(0xab) }), 'channel.key', "expected a 32-byte server static public key, got 33 bytes"],
    ['a prologue as a string', () => NoiseHandshake.initiator({ remoteStatic: generateX25519KeyPair().publicKey, prologue: 'x' as never }), 'channel.state', 'expected prologue as a Uint8Array, got a string'],
    ['a short key to encode', () => encodeServerPublicKey(new Uint8Array(31).fill(0xab)), 'channel.key', 'expected a 32-byte X25519 public key, got 31 bytes'],
  ] as const)('refuses %s with a ChannelError that names sizes, never the bytes', (_name, action, code, message) => {
    expectChannelError(action, code);
    expect(action).toThrow(message);
  });

  it('refuses calls out of order and keys of the wrong shape', () => {
    const server = generateX25519KeyPair();
    const initiator = NoiseHandshake.initiator({ remoteStatic: server.publicKey });
    expectChannelError(() => initiator.readMessage(new Uint8Array(48)), 'channel.state');
    expectChannelError(() => initiator.split(), 'channel.state');
    expectChannelError(() => initiator.handshakeHash, 'channel.state');
    const responder = NoiseHandshake.responder({ staticKeyPair: server });
    expectChannelError(() => responder.writeMessage(new Uint8Array(0)), 'channel.state');
    expectChannelError(() => NoiseHandshake.initiator({ remoteStatic: new Uint8Array(31) }), 'channel.key');
    expectChannelError(
      () => NoiseHandshake.responder({ staticKeyPair: { privateKey: server.privateKey, publicKey: generateX25519KeyPair().publicKey } }),
      'channel.key',
    );
  });

  it('a low-order ephemeral from the initiator fails the handshake (all-zero DH, RFC 7748 section 6.1)', () => {
    const server = generateX25519KeyPair();
    for (const u of ['00'.repeat(32), '01' + '00'.repeat(31), 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800']) {
      const message = new Uint8Array(48);
      message.set(fromHex(u));
      const responder = NoiseHandshake.responder({ staticKeyPair: server });
      expectChannelError(() => responder.readMessage(message), 'channel.handshake');
      expect(responder.complete).toBe(false);
    }
  });

  it('a responder rebuilt from the same static key after its bytes changed uses the new key', () => {
    const first = generateX25519KeyPair();
    const second = generateX25519KeyPair();
    const key = first.privateKey.slice();
    NoiseHandshake.responder({ staticKeyPair: { privateKey: key, publicKey: first.publicKey } });
    key.set(second.privateKey);
    expectChannelError(() => NoiseHandshake.responder({ staticKeyPair: { privateKey: key, publicKey: first.publicKey } }), 'channel.key');
    const initiator = NoiseHandshake.initiator({ remoteStatic: second.publicKey });
    const responder = NoiseHandshake.responder({ staticKeyPair: { privateKey: key, publicKey: second.publicKey } });
    responder.readMessage(initiator.writeMessage());
    initiator.readMessage(responder.writeMessage());
    expect(initiator.complete && responder.complete).toBe(true);
  });

  it('refuses messages and payloads beyond 65535 bytes', () => {
    const server = generateX25519KeyPair();
    expectChannelError(() => NoiseHandshake.initiator({ remoteStatic: server.publicKey }).writeMessage(new Uint8Array(65535 - 48 + 1)), 'channel.oversized');
    expect(NoiseHandshake.initiator({ remoteStatic: server.publicKey }).writeMessage(new Uint8Array(65535 - 48)).length).toBe(65535);
    expectChannelError(() => NoiseHandshake.responder({ staticKeyPair: server }).readMessage(new Uint8Array(65536)), 'channel.oversized');
  });

  it('never throws anything but ChannelError on random handshake messages', () => {
    const server = generateX25519KeyPair();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expectChannelError(() => NoiseHandshake.responder({ staticKeyPair: server }).readMessage(bytes));
      }),
    );
  });
});

describe('NoiseTransport', () => {
  it('replayed, reordered, truncated and modified messages fail, and the transport dies', () => {
    // Every input but the last is genuine; the last must fail.
    const cases: [string, (a: Uint8Array, b: Uint8Array) => Uint8Array[]][] = [
      ['replayed', (a) => [a, a]],
      // b arrives first: it carries nonce 1 where nonce 0 is expected.
      ['reordered', (_a, b) => [b]],
      ['truncated', (a) => [a.subarray(0, a.length - 1)]],
      ['modified', (a) => [Uint8Array.from(a, (x, k) => (k === 0 ? x ^ 1 : x))]],
    ];
    for (const [, feed] of cases) {
      const { initiator, responder } = pair();
      const a = initiator.encrypt(utf8('first'));
      const b = initiator.encrypt(utf8('second'));
      const inputs = feed(a, b);
      const last = inputs.pop() as Uint8Array;
      for (const input of inputs) responder.decrypt(input);
      expectChannelError(() => responder.decrypt(last), 'channel.decrypt');
      // Dead: even the genuine next message is refused, and so is sending.
      expectChannelError(() => responder.decrypt(b), 'channel.closed');
      expectChannelError(() => responder.encrypt(utf8('x')), 'channel.closed');
    }
  });

  it('refuses oversized input in both directions', () => {
    const { initiator, responder } = pair();
    expect(initiator.encrypt(new Uint8Array(65535 - 16)).length).toBe(65535);
    expectChannelError(() => initiator.encrypt(new Uint8Array(65535 - 15)), 'channel.oversized');
    expectChannelError(() => responder.decrypt(new Uint8Array(65536)), 'channel.oversized');
  });

  it('refuses the reserved nonce 2^64-1', () => {
    const cipher = new CipherState();
    cipher.initializeKey(new Uint8Array(32));
    cipher.setNonce(2n ** 64n - 2n);
    cipher.encryptWithAd(new Uint8Array(0), new Uint8Array(0));
    expect(cipher.nonce).toBe(2n ** 64n - 1n);
    expectChannelError(() => cipher.encryptWithAd(new Uint8Array(0), new Uint8Array(0)), 'channel.nonce');
  });

  it('never throws anything but ChannelError on random transport messages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const { responder } = pair();
        expectChannelError(() => responder.decrypt(bytes));
      }),
      { numRuns: 50 },
    );
  });
});
