// The Ed25519 seed of a server-held card (DESIGN.md "Software rental", trust model; patent 003 [0096]: the card
// never releases its private keying material), sealed to this server: XChaCha20-Poly1305 under a key derived from
// the server's own secret key material in its data directory, with the card's serial as associated data, so a
// sealed seed moved to another row does not open. Stored form: nonce (24) ‖ ciphertext (32) ‖ tag (16). The seed is
// generated here, never logged, never sent; it is opened for one signature and wiped at once.
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concatBytes, utf8, wipe } from '../bytes/index.js';
import { ED25519_SEED_LENGTH, ed25519KeyFromSeed, hmacSha256 } from '../crypto/index.js';
import { VscError } from '../errors/index.js';
import type { ServerKeys } from './server-data.js';

const KEY_DOMAIN = utf8('vsc-server-held-seed-key/1');
const AD_DOMAIN = utf8('vsc-server-held-seed/1\0');
const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;
export const SEALED_SEED_LENGTH = NONCE_LENGTH + ED25519_SEED_LENGTH + TAG_LENGTH;

/** A sealed seed that does not open: another server's, another serial's, or damaged. */
export class HeldSeedError extends VscError {
  override readonly name = 'HeldSeedError';
  constructor(message: string) {
    super('server.held-seed', message);
  }
}

/** Seals and opens server-held seeds under one server's key. */
export interface HeldSeedSealer {
  /** A fresh seed, sealed to this server for `serial`, and its public key; the seed itself is wiped. */
  generate(serial: string): { readonly sealed: Uint8Array; readonly publicKey: Uint8Array };
  /** The same seed sealed for another serial (a copy or an exact replacement of the card). */
  reseal(sealed: Uint8Array, from: string, to: string): Uint8Array;
  /** Calls `use` with the seed and wipes it afterwards, also when `use` throws. */
  withSeed<T>(serial: string, sealed: Uint8Array, use: (seed: Uint8Array) => T): T;
}

/** The sealer of the server whose keys these are. Keeps only the derived key. */
export function heldSeedSealer(keys: Pick<ServerKeys, 'channelPrivateKey'>): HeldSeedSealer {
  const key = hmacSha256(keys.channelPrivateKey, KEY_DOMAIN);
  const ad = (serial: string): Uint8Array => concatBytes(AD_DOMAIN, utf8(serial));
  const seal = (serial: string, seed: Uint8Array): Uint8Array => {
    const nonce = new Uint8Array(randomBytes(NONCE_LENGTH));
    return concatBytes(nonce, xchacha20poly1305(key, nonce, ad(serial)).encrypt(seed));
  };
  const open = (serial: string, sealed: Uint8Array): Uint8Array => {
    if (!(sealed instanceof Uint8Array) || sealed.length !== SEALED_SEED_LENGTH) throw new HeldSeedError(`expected a sealed seed of ${SEALED_SEED_LENGTH} bytes, got ${sealed instanceof Uint8Array ? sealed.length : typeof sealed}`);
    try {
      return xchacha20poly1305(key, sealed.subarray(0, NONCE_LENGTH), ad(serial)).decrypt(sealed.subarray(NONCE_LENGTH));
    } catch {
      throw new HeldSeedError(`the sealed seed of card ${serial} does not open with this server's key`);
    }
  };
  return Object.freeze({
    generate(serial: string) {
      const seed = new Uint8Array(randomBytes(ED25519_SEED_LENGTH));
      try {
        return { sealed: seal(serial, seed), publicKey: ed25519KeyFromSeed(seed).publicKey };
      } finally {
        wipe(seed);
      }
    },
    reseal(sealed: Uint8Array, from: string, to: string) {
      const seed = open(from, sealed);
      try {
        return seal(to, seed);
      } finally {
        wipe(seed);
      }
    },
    withSeed<T>(serial: string, sealed: Uint8Array, use: (seed: Uint8Array) => T): T {
      const seed = open(serial, sealed);
      try {
        return use(seed);
      } finally {
        wipe(seed);
      }
    },
  });
}
