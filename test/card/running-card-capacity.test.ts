// A card can always be given back (issue 13): whatever backs it, the running card keeps its protected
// information within MAX_PROTECTED_INFORMATION_BYTES, so that sealed it fits the remove message
// (MAX_SEALED_BYTES) and one Noise transport message (65535 bytes). PUT DATA past it answers 6A84
// (ISO 7816-4 table 6) and changes nothing; the largest state the card accepts is given back whole.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DATA_OBJECT_LENGTH, PivTag } from '../../src/apdu/index.js';
import { concatBytes, fromHex, toHex } from '../../src/bytes/index.js';
import { openEmulatedCard, readEmulatedCardState } from '../../src/card-emulator/index.js';
import {
  RunningCard, encodeProtectedInformation, encodedProtectedInformationLength, newProtectedInformation, readPivState, type CardBacking, type CounterGrant, type OpenedCard,
} from '../../src/card/index.js';
import { MAX_MESSAGE_LENGTH } from '../../src/channel/index.js';
import { sealProtectedInformation } from '../../src/vsc-client/index.js';
import { MAX_PROTECTED_INFORMATION_BYTES, MAX_SEALED_BYTES, SEALING_OVERHEAD, encodeProof } from '../../src/vsc-protocol/index.js';
import { DEFAULT_MANAGEMENT_KEY, pivHost, tlv } from '../support/index.js';

/** Certificate containers of the retired key slots (SP 800-73-4 Part 1 table 3): room to fill. */
const RETIRED_CERTIFICATES = Array.from({ length: 20 }, (_, i) => 0x5fc10d + i);
/** Each data object costs its content plus a field header (5) and its tag (3) in the encoded information. */
const OBJECT_OVERHEAD = 8;

/** Remembers what it was given, nothing more. */
class MemoryBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  readonly saved: Uint8Array[] = [];
  readonly givenBack: Uint8Array[] = [];
  constructor(private readonly opened: OpenedCard) {}
  async open(): Promise<OpenedCard> {
    return { ...this.opened, plaintext: this.opened.plaintext.slice() };
  }
  async grantMore(): Promise<CounterGrant> {
    return new Promise(() => undefined);
  }
  async save(snapshot: Uint8Array): Promise<void> {
    this.saved.push(snapshot.slice());
  }
  async giveBack(snapshot: Uint8Array): Promise<void> {
    this.givenBack.push(snapshot.slice());
  }
  async close(): Promise<void> {}
}

const objectFor = (tag: number, content: Uint8Array) => concatBytes(fromHex(`5c03${tag.toString(16)}`), tlv(0x53, content));
const contentOf = (tag: number, length: number) => new Uint8Array(length).map((_, i) => (tag + i * 7) & 0xff);

/**
 * Fills the retired certificate containers until the information is exactly at the limit, checking
 * on the way that one byte more is refused with 6A84 and leaves the card as it was. Returns what it wrote.
 */
async function fillToTheLimit(card: ReturnType<typeof pivHost>, size: () => number): Promise<Map<number, Uint8Array>> {
  expect((await card.select()).sw).toBe(0x9000);
  expect((await card.mutualAuth(DEFAULT_MANAGEMENT_KEY)).sw).toBe(0x9000);
  const written = new Map<number, Uint8Array>();
  for (const tag of RETIRED_CERTIFICATES) {
    const room = MAX_PROTECTED_INFORMATION_BYTES - size();
    if (room === 0) break;
    const length = Math.min(MAX_DATA_OBJECT_LENGTH, room - OBJECT_OVERHEAD);
    expect(length, 'a gap too small for one more object').toBeGreaterThan(0);
    if (length < MAX_DATA_OBJECT_LENGTH) {
      const before = size();
      expect((await card.exchange(0xdb, 0x3f, 0xff, objectFor(tag, contentOf(tag, length + 1)))).sw).toBe(0x6a84);
      expect(size()).toBe(before);
      expect((await card.getData(tag)).sw).toBe(0x6a82);
    }
    const content = contentOf(tag, length);
    expect((await card.exchange(0xdb, 0x3f, 0xff, objectFor(tag, content))).sw).toBe(0x9000);
    written.set(tag, content);
  }
  expect(size()).toBe(MAX_PROTECTED_INFORMATION_BYTES);
  return written;
}

describe('the room of a running card', () => {
  it('is what a remove carries: MAX_SEALED_BYTES less the sealing overhead, and the remove fits one Noise message', () => {
    expect(MAX_PROTECTED_INFORMATION_BYTES).toBe(MAX_SEALED_BYTES - SEALING_OVERHEAD);
    const sealed = sealProtectedInformation(new Uint8Array(32).fill(7), new Uint8Array(16), 1n, new Uint8Array(MAX_PROTECTED_INFORMATION_BYTES));
    expect(sealed).toHaveLength(MAX_SEALED_BYTES);
    const proof = encodeProof('remove', {
      ri2: new Uint8Array(32), masterProof: new Uint8Array(32), installId: 'x'.repeat(128), keyfileProof: new Uint8Array(32),
      muk: new Uint8Array(32), holderSecret: new Uint8Array(32), sealed, sealedVersion: (1n << 128n) - 1n, nextCounter: (1n << 128n) - 1n,
    });
    expect(proof.length + 16).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH); // ChaChaPoly tag on the transport message
  });

  it('fills to the limit with PUT DATA; past it 6A84 changes nothing; a full card gives back all of it', async () => {
    const backing = new MemoryBacking({ serial: 'FULL-1', keyMode: 'individual', plaintext: encodeProtectedInformation(newProtectedInformation()), grant: { start: 0n, end: 8n } });
    const card = await RunningCard.open(backing);
    card.os.powerOn();
    const host = pivHost(card.os);
    const size = () => {
      const snapshot = card.snapshot();
      const length = snapshot.length;
      snapshot.fill(0);
      return length;
    };
    const written = await fillToTheLimit(host, size);
    const saves = backing.saved.length;

    // Full: one byte more anywhere, or a key in an empty slot, is refused before the backing sees it.
    const [firstTag, firstContent] = [...written][0]!;
    expect((await host.exchange(0xdb, 0x3f, 0xff, objectFor(firstTag, concatBytes(firstContent, Uint8Array.of(0))))).sw).toBe(0x6a84);
    expect((await host.exchange(0xdb, 0x3f, 0xff, objectFor(PivTag.CERT_9E, Uint8Array.of(1)))).sw).toBe(0x6a84);
    expect((await host.exchange(0x47, 0x00, 0x9e, fromHex('ac03800111'))).sw).toBe(0x6a84);
    expect(backing.saved).toHaveLength(saves);
    expect(toHex((await host.getData(firstTag)).data)).toBe(toHex(tlv(0x53, firstContent)));
    // What does not grow goes on: a PIN try, a new key in a used slot.
    expect((await host.verifyPin('123456')).sw).toBe(0x9000);
    expect((await host.exchange(0x47, 0x00, 0x9a, fromHex('ac03800111'))).sw).toBe(0x9000);

    await card.giveBack();
    await card.destroy();
    const [given] = backing.givenBack;
    expect(given).toHaveLength(MAX_PROTECTED_INFORMATION_BYTES);
    const piv = readPivState(given!);
    for (const [tag, content] of written) expect(toHex(piv.dataObjects.get(tag)!)).toBe(toHex(content));
    expect(sealProtectedInformation(new Uint8Array(32).fill(7), new Uint8Array(16), 2n, given!)).toHaveLength(MAX_SEALED_BYTES);
  });

  describe('backed by a state file (vsc card emulate)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'vsc-capacity-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('has the same room, and the full card opens again from its file with every object', async () => {
      const path = join(dir, 'full.state');
      const first = await openEmulatedCard(path, { serial: 'EMU-FULL' });
      first.os.powerOn();
      // Every change is in the file before the card answers: its information is the card's.
      const size = () => {
        const state = readEmulatedCardState(path)!;
        return encodedProtectedInformationLength(state.piv);
      };
      let written: Map<number, Uint8Array>;
      try {
        written = await fillToTheLimit(pivHost(first.os), size);
      } finally {
        await first.close();
      }
      const again = await openEmulatedCard(path);
      try {
        again.os.powerOn();
        const host = pivHost(again.os);
        expect((await host.select()).sw).toBe(0x9000);
        for (const [tag, content] of written) expect(toHex((await host.getData(tag)).data)).toBe(toHex(tlv(0x53, content)));
        expect((await host.mutualAuth(DEFAULT_MANAGEMENT_KEY)).sw).toBe(0x9000);
        expect((await host.exchange(0xdb, 0x3f, 0xff, objectFor(PivTag.CERT_9E, Uint8Array.of(1)))).sw).toBe(0x6a84);
      } finally {
        await again.close();
      }
    });
  });
});
