// A typed host-side client of the VSC applet (DESIGN.md "The VSC applet"): what rented programs,
// the demo, the benchmarks and the tests use instead of hand-written APDUs.
import { COUNTER_LENGTH, signedDigest, type VscKeyMode } from '../apdu/index.js';
import { bytesToUint } from '../bytes/index.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, ed25519Verify } from '../crypto/index.js';
import { exchange, MalformedResponseError, type CardTransport } from './card-transport.js';
import { vscCommands } from './vsc-applet-commands.js';

export interface SignAndIncrementAnswer {
  /** The counter value that went into the signed digest. */
  readonly counter: bigint;
  /** Ed25519 signature of SHA-256(h ‖ [serial ‖] counter). */
  readonly signature: Uint8Array;
}

function expectLength(what: string, data: Uint8Array, length: number): Uint8Array {
  if (data.length !== length) throw new MalformedResponseError(`expected ${what} of ${length} bytes, got ${data.length}`);
  return data;
}

/** Parses the SIGN AND INCREMENT response data: counter (16 bytes) ‖ signature (64 bytes). */
export function parseSignAndIncrement(data: Uint8Array): SignAndIncrementAnswer {
  expectLength('a SIGN AND INCREMENT answer', data, COUNTER_LENGTH + ED25519_SIGNATURE_LENGTH);
  return { counter: bytesToUint(data.subarray(0, COUNTER_LENGTH)), signature: data.slice(COUNTER_LENGTH) };
}

/** Checks a SIGN AND INCREMENT answer for hash `h` against the card's public key and serial. */
export function verifySignAndIncrement(answer: SignAndIncrementAnswer, h: Uint8Array, card: { publicKey: Uint8Array; serial: string; keyMode?: VscKeyMode }): boolean {
  return ed25519Verify(card.publicKey, signedDigest(h, answer.counter, card.keyMode ?? 'individual', card.serial), answer.signature);
}

export class VscAppletClient {
  constructor(private readonly transport: CardTransport) {}

  async select(): Promise<void> {
    await exchange(this.transport, vscCommands.select());
  }

  async serialNumber(): Promise<string> {
    const answer = await exchange(this.transport, vscCommands.getSerialNumber());
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(answer);
    } catch (cause) {
      throw new MalformedResponseError(`expected a serial number in UTF-8, got ${answer.length} bytes that are not`, { cause });
    }
  }

  /** The value the next SIGN AND INCREMENT signs with. */
  async counter(): Promise<bigint> {
    return bytesToUint(expectLength('a counter', await exchange(this.transport, vscCommands.getCounter()), COUNTER_LENGTH));
  }

  async signAndIncrement(h: Uint8Array, keyMode: VscKeyMode = 'individual'): Promise<SignAndIncrementAnswer> {
    return parseSignAndIncrement(await exchange(this.transport, vscCommands.signAndIncrement(h, keyMode)));
  }

  async publicKey(): Promise<Uint8Array> {
    return expectLength('a public key', await exchange(this.transport, vscCommands.getPublicKey()), ED25519_PUBLIC_KEY_LENGTH).slice();
  }
}
