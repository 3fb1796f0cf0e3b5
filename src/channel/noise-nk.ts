// Noise_NK_25519_ChaChaPoly_SHA256: the HandshakeState for pattern NK (Noise specification rev. 34,
// sections 5.3 and 7.4) and the transport CipherState pair that Split() returns.
//   NK:  <- s
//        ...
//        -> e, es
//        <- e, ee
import { concatBytes, constantTimeEqual, utf8, wipe } from '../bytes/index.js';
import {
  generateX25519KeyPair as generateRawKeyPair,
  generateX25519PrivateKey,
  type X25519PrivateKey,
  x25519PrivateKey,
  x25519PublicKey as publicKeyOf,
} from '../crypto/index.js';
import { assertBytes } from '../errors/index.js';
import { ChannelError } from './channel-error.js';
import { type CipherState, MAX_MESSAGE_LENGTH, SymmetricState, TAGLEN } from './noise-cipher-state.js';

export { MAX_MESSAGE_LENGTH } from './noise-cipher-state.js';

export const NOISE_PROTOCOL_NAME = 'Noise_NK_25519_ChaChaPoly_SHA256';
const DHLEN = 32;

export interface X25519KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

// The boundary assert, failing as ChannelError: callers of the channel catch one error type.
const keyError = (message: string): ChannelError => new ChannelError('channel.key', message);
const stateError = (message: string): ChannelError => new ChannelError('channel.state', message);

function checkKey(what: string, key: unknown): Uint8Array {
  assertBytes(what, key, DHLEN, keyError);
  return key;
}

function checkBytes(what: string, value: unknown): Uint8Array {
  assertBytes(what, value, undefined, stateError);
  return value;
}

export function generateX25519KeyPair(): X25519KeyPair {
  return generateRawKeyPair();
}

export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  return publicKeyOf(checkKey('X25519 private key', privateKey));
}

// A server passes the same static private key to every responder. Importing it and checking it
// against its public key is itself an X25519 operation, so it is done once per key: the cache is
// keyed by the caller's array and kept only while that array still holds the same bytes.
const staticKeys = new WeakMap<Uint8Array, { bytes: Uint8Array; key: X25519PrivateKey }>();

function staticKey(privateKey: Uint8Array): X25519PrivateKey {
  const cached = staticKeys.get(privateKey);
  if (cached !== undefined && constantTimeEqual(cached.bytes, privateKey)) return cached.key;
  const key = x25519PrivateKey(privateKey);
  staticKeys.set(privateKey, { bytes: privateKey.slice(), key });
  return key;
}

/** DH(key_pair, public_key); a low-order peer key (all-zero secret) is a handshake failure. */
function dh(privateKey: X25519PrivateKey, publicKey: Uint8Array): Uint8Array {
  try {
    return privateKey.sharedSecret(publicKey);
  } catch (cause) {
    throw new ChannelError('channel.handshake', 'the peer sent an invalid X25519 public key', { cause });
  }
}

/** Transport phase: one CipherState per direction. Any failed decrypt kills both. */
export class NoiseTransport {
  #send: CipherState;
  #receive: CipherState;
  #dead = false;

  /** @internal Built by NoiseHandshake.split(). */
  constructor(send: CipherState, receive: CipherState) {
    this.#send = send;
    this.#receive = receive;
  }

  get dead(): boolean {
    return this.#dead;
  }

  encrypt(plaintext: Uint8Array): Uint8Array {
    this.#checkAlive();
    checkBytes('plaintext', plaintext);
    if (plaintext.length + TAGLEN > MAX_MESSAGE_LENGTH) {
      throw new ChannelError(
        'channel.oversized',
        `expected a plaintext of at most ${MAX_MESSAGE_LENGTH - TAGLEN} bytes, got ${plaintext.length}`,
      );
    }
    return this.#send.encryptWithAd(new Uint8Array(0), plaintext);
  }

  decrypt(ciphertext: Uint8Array): Uint8Array {
    this.#checkAlive();
    try {
      checkBytes('ciphertext', ciphertext);
      if (ciphertext.length > MAX_MESSAGE_LENGTH) {
        throw new ChannelError('channel.oversized', `expected a message of at most ${MAX_MESSAGE_LENGTH} bytes, got ${ciphertext.length}`);
      }
      return this.#receive.decryptWithAd(new Uint8Array(0), ciphertext, 'channel.decrypt');
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  /** Wipes both keys; every later call throws. */
  destroy(): void {
    this.#dead = true;
    this.#send.destroy();
    this.#receive.destroy();
  }

  #checkAlive(): void {
    if (this.#dead) throw new ChannelError('channel.closed', 'the Noise transport is closed after an earlier failure');
  }
}

export interface InitiatorOptions {
  /** The responder's static public key, known in advance (the `<- s` pre-message). */
  remoteStatic: Uint8Array;
  prologue?: Uint8Array;
  /** Fixed ephemeral private key, for test vectors only. */
  ephemeral?: Uint8Array;
}

export interface ResponderOptions {
  staticKeyPair: X25519KeyPair;
  prologue?: Uint8Array;
  /** Fixed ephemeral private key, for test vectors only. */
  ephemeral?: Uint8Array;
}

type Role = 'initiator' | 'responder';
// Message 0 is "-> e, es", message 1 is "<- e, ee"; after that the handshake is complete.
const HANDSHAKE_MESSAGES = 2;

export class NoiseHandshake {
  readonly #role: Role;
  readonly #symmetric: SymmetricState;
  #e: X25519PrivateKey | undefined;
  #s: X25519PrivateKey | undefined;
  #rs: Uint8Array | undefined;
  #re: Uint8Array | undefined;
  #step = 0;
  #failed = false;
  #split = false;
  #handshakeHash: Uint8Array | undefined;

  private constructor(role: Role, prologue: Uint8Array, ephemeral: Uint8Array | undefined) {
    this.#role = role;
    this.#symmetric = new SymmetricState(utf8(NOISE_PROTOCOL_NAME));
    this.#symmetric.mixHash(checkBytes('prologue', prologue));
    if (ephemeral !== undefined) {
      this.#e = x25519PrivateKey(checkKey('ephemeral private key', ephemeral));
    }
  }

  static initiator(options: InitiatorOptions): NoiseHandshake {
    const remoteStatic = checkKey('server static public key', options.remoteStatic).slice();
    const hs = new NoiseHandshake('initiator', options.prologue ?? new Uint8Array(0), options.ephemeral);
    hs.#rs = remoteStatic;
    hs.#symmetric.mixHash(remoteStatic);
    return hs;
  }

  static responder(options: ResponderOptions): NoiseHandshake {
    const s = staticKey(checkKey('static private key', options.staticKeyPair?.privateKey));
    const publicKey = checkKey('static public key', options.staticKeyPair.publicKey).slice();
    if (!constantTimeEqual(s.publicKey, publicKey)) {
      throw new ChannelError('channel.key', 'expected a static key pair whose public key matches its private key');
    }
    const hs = new NoiseHandshake('responder', options.prologue ?? new Uint8Array(0), options.ephemeral);
    hs.#s = s;
    hs.#symmetric.mixHash(publicKey);
    return hs;
  }

  get complete(): boolean {
    return this.#step === HANDSHAKE_MESSAGES && !this.#failed;
  }

  /** GetHandshakeHash(): binds the session to everything both sides saw; available once complete. */
  get handshakeHash(): Uint8Array {
    if (this.#handshakeHash === undefined) throw new ChannelError('channel.state', 'the handshake hash exists only after the handshake');
    return this.#handshakeHash.slice();
  }

  writeMessage(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    this.#expectTurn('write');
    checkBytes('payload', payload);
    if (payload.length + DHLEN + TAGLEN > MAX_MESSAGE_LENGTH) {
      throw new ChannelError('channel.oversized', `expected a handshake payload of at most ${MAX_MESSAGE_LENGTH - DHLEN - TAGLEN} bytes, got ${payload.length}`);
    }
    return this.#guard(() => {
      // Both NK messages start with "e": a fresh ephemeral, sent in the clear and hashed.
      const e = this.#e ?? generateX25519PrivateKey();
      this.#e = e;
      this.#symmetric.mixHash(e.publicKey);
      this.#mixDh(this.#role === 'initiator' ? 'es' : 'ee');
      const message = concatBytes(e.publicKey, this.#symmetric.encryptAndHash(payload));
      this.#advance();
      return message;
    });
  }

  readMessage(message: Uint8Array): Uint8Array {
    this.#expectTurn('read');
    checkBytes('message', message);
    if (message.length > MAX_MESSAGE_LENGTH) {
      this.#fail();
      throw new ChannelError('channel.oversized', `expected a handshake message of at most ${MAX_MESSAGE_LENGTH} bytes, got ${message.length}`);
    }
    return this.#guard(() => {
      // With a key already mixed in (both NK messages), the payload carries at least a tag.
      if (message.length < DHLEN + TAGLEN) {
        throw new ChannelError('channel.handshake', `expected a handshake message of at least ${DHLEN + TAGLEN} bytes, got ${message.length}`);
      }
      this.#re = message.slice(0, DHLEN);
      this.#symmetric.mixHash(this.#re);
      this.#mixDh(this.#role === 'responder' ? 'es' : 'ee');
      const payload = this.#symmetric.decryptAndHash(message.subarray(DHLEN));
      this.#advance();
      return payload;
    });
  }

  /** Split(): the transport; the initiator sends with the first CipherState. Callable once. */
  split(): NoiseTransport {
    if (!this.complete || this.#split) throw new ChannelError('channel.state', 'split() needs a complete handshake and works once');
    this.#split = true;
    const [c1, c2] = this.#symmetric.split();
    return this.#role === 'initiator' ? new NoiseTransport(c1, c2) : new NoiseTransport(c2, c1);
  }

  #mixDh(token: 'es' | 'ee'): void {
    const e = this.#e;
    let shared: Uint8Array;
    if (token === 'ee') {
      shared = dh(this.#need(e), this.#need(this.#re));
    } else if (this.#role === 'initiator') {
      shared = dh(this.#need(e), this.#need(this.#rs));
    } else {
      shared = dh(this.#need(this.#s), this.#need(this.#re));
    }
    this.#symmetric.mixKey(shared);
    wipe(shared);
  }

  #need<T>(value: T | undefined): T {
    if (value === undefined) throw new ChannelError('channel.state', 'a key the NK pattern needs is missing');
    return value;
  }

  #expectTurn(operation: 'write' | 'read'): void {
    if (this.#failed) throw new ChannelError('channel.handshake', 'the handshake already failed');
    if (this.#step >= HANDSHAKE_MESSAGES) throw new ChannelError('channel.state', 'the handshake is already complete');
    const initiatorWrites = this.#step % 2 === 0;
    const writes = this.#role === 'initiator' ? initiatorWrites : !initiatorWrites;
    if ((operation === 'write') !== writes) {
      throw new ChannelError('channel.state', `expected ${writes ? 'writeMessage' : 'readMessage'} for handshake message ${this.#step + 1}, got ${operation}`);
    }
  }

  #guard<T>(action: () => T): T {
    try {
      return action();
    } catch (error) {
      this.#fail();
      throw error instanceof ChannelError ? error : new ChannelError('channel.handshake', 'the handshake failed', { cause: error });
    }
  }

  #advance(): void {
    this.#step++;
    if (this.#step === HANDSHAKE_MESSAGES) {
      this.#handshakeHash = this.#symmetric.handshakeHash;
      this.#wipeKeys();
    }
  }

  #fail(): void {
    this.#failed = true;
    this.#wipeKeys();
    this.#symmetric.destroy();
  }

  // The private keys are opaque KeyObjects (their scalars never enter the JS heap): dropping them is
  // all there is to do. ck and k live in #symmetric.
  #wipeKeys(): void {
    this.#e = undefined;
    this.#s = undefined;
  }
}
