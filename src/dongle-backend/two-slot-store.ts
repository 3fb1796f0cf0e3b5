// Writes that are never torn, on storage that promises less ([0108]: the dongle's second storage location).
// A PKCS#11 data object or a file may be left half-written by a crash or a pulled token; so every named
// slot is kept in two copies, A and B, each framed with a generation number and a checksum. A write goes to
// the copy that does not hold the newest generation; a read takes the newest copy whose checksum holds.
// A crash during a write therefore leaves the old version readable (the other copy), never a mix.
//
// Frame: "VSD1" ‖ generation (8, big-endian) ‖ length (4) ‖ payload ‖ SHA-256(generation ‖ length ‖ payload).
import { bytesToUint, concatBytes, constantTimeEqual, uintToBytes, utf8 } from '../bytes/index.js';
import { sha256, SHA256_LENGTH } from '../crypto/index.js';
import { crashArmed, crashPoint } from '../fault-injection/index.js';
import { DongleError, type DongleSlot } from './dongle.js';

/** The raw storage under the frames: named blobs a write may tear. */
export interface RawSlotStore {
  get(name: string): Promise<Uint8Array | undefined>;
  put(name: string, bytes: Uint8Array): Promise<void>;
}

const MAGIC = utf8('VSD1');
const HEADER_LENGTH = MAGIC.length + 8 + 4;
/** The largest payload a slot takes: a card record of the largest protected information with room to spare. */
export const MAX_SLOT_PAYLOAD_BYTES = 64 * 1024;

type Copy = 'a' | 'b';
interface Framed {
  readonly copy: Copy;
  readonly generation: bigint;
  readonly payload: Uint8Array;
}

function frame(generation: bigint, payload: Uint8Array): Uint8Array {
  const head = concatBytes(uintToBytes(generation, 8), uintToBytes(BigInt(payload.length), 4));
  return concatBytes(MAGIC, head, payload, sha256(head, payload));
}

function unframe(copy: Copy, bytes: Uint8Array | undefined): Framed | undefined {
  if (bytes === undefined || bytes.length < HEADER_LENGTH + SHA256_LENGTH) return undefined;
  if (!constantTimeEqual(bytes.subarray(0, MAGIC.length), MAGIC)) return undefined;
  const head = bytes.subarray(MAGIC.length, HEADER_LENGTH);
  const length = Number(bytesToUint(head.subarray(8, 12)));
  if (length > MAX_SLOT_PAYLOAD_BYTES || bytes.length !== HEADER_LENGTH + length + SHA256_LENGTH) return undefined;
  const payload = bytes.subarray(HEADER_LENGTH, HEADER_LENGTH + length);
  if (!constantTimeEqual(sha256(head, payload), bytes.subarray(HEADER_LENGTH + length))) return undefined;
  return { copy, generation: bytesToUint(head.subarray(0, 8)), payload: payload.slice() };
}

export class TwoSlotStore {
  /** The newest copy of each slot as last read or written: the next write goes to the other copy. */
  readonly #newest = new Map<DongleSlot, Framed | null>();

  constructor(private readonly raw: RawSlotStore) {}

  async read(slot: DongleSlot): Promise<Uint8Array | undefined> {
    const newest = await this.#readNewest(slot);
    return newest?.payload.slice();
  }

  async write(slot: DongleSlot, payload: Uint8Array): Promise<void> {
    if (payload.length > MAX_SLOT_PAYLOAD_BYTES) {
      throw new DongleError('slot-too-large', `expected at most ${MAX_SLOT_PAYLOAD_BYTES} bytes for the ${slot} slot, got ${payload.length}`);
    }
    const newest = this.#newest.has(slot) ? this.#newest.get(slot) ?? undefined : await this.#readNewest(slot);
    const copy: Copy = newest?.copy === 'a' ? 'b' : 'a';
    const generation = (newest?.generation ?? 0n) + 1n;
    const framed = frame(generation, payload);
    if (slot !== 'revocations' && crashArmed(`dongle.${slot}.torn`)) {
      // The fault tests' torn write: half a copy on the dongle, then the process dies as under kill -9.
      await this.raw.put(`${slot}.${copy}`, framed.subarray(0, framed.length >> 1));
      crashPoint(`dongle.${slot}.torn`);
    }
    await this.raw.put(`${slot}.${copy}`, framed);
    this.#newest.set(slot, { copy, generation, payload: new Uint8Array(0) });
  }

  async #readNewest(slot: DongleSlot): Promise<Framed | undefined> {
    const a = unframe('a', await this.raw.get(`${slot}.a`));
    const b = unframe('b', await this.raw.get(`${slot}.b`));
    const newest = a === undefined ? b : b === undefined || a.generation > b.generation ? a : b;
    this.#newest.set(slot, newest === undefined ? null : { ...newest, payload: new Uint8Array(0) });
    return newest;
  }
}
