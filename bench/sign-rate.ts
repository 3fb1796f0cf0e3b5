// SIGN AND INCREMENT per second through the card, against the raw Ed25519 signing rate of the
// library the card uses (node:crypto), measured in the same run and interleaved to share noise.
import { ed25519 } from '@noble/curves/ed25519.js';
import { CardOs, encodeCommandApdu, SoftwareVscCard, VscApplet } from '../src/apdu/index.js';
import { vscCommands } from '../src/card-client/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../src/crypto/index.js';
import { measureRate, median } from './stats.js';

export interface SignRateResult {
  rawPerSecond: number;
  cardPerSecond: number;
  noblePerSecond: number;
  ratio: number;
}

// Encoded once: the benchmark measures the card and the reader, not the APDU builder.
const SELECT = encodeCommandApdu(vscCommands.select());
const SIGN = encodeCommandApdu(vscCommands.signAndIncrement(new Uint8Array(32).fill(0x5a)));

export async function measureSignRate(transmitThroughReader: (card: CardOs) => Promise<(apdu: Uint8Array) => Promise<Uint8Array>>, roundMs = 400, rounds = 15): Promise<SignRateResult> {
  const seed = generateEd25519Seed();
  const key = ed25519KeyFromSeed(seed);
  const message = new Uint8Array(32).fill(0x5a);
  const card = new CardOs([new VscApplet(new SoftwareVscCard({ serial: 'BENCH-1', keyMode: 'individual', key, counter: 0n }))]);
  const transmit = await transmitThroughReader(card);
  await transmit(SELECT);
  const raw: number[] = [];
  const throughCard: number[] = [];
  for (let round = 0; round < rounds; round++) {
    raw.push(await measureRate(() => key.sign(message), roundMs));
    throughCard.push(await measureRate(() => transmit(SIGN), roundMs));
  }
  const noble = await measureRate(() => ed25519.sign(message, seed), roundMs);
  seed.fill(0);
  const rawPerSecond = median(raw);
  const cardPerSecond = median(throughCard);
  return { rawPerSecond, cardPerSecond, noblePerSecond: noble, ratio: cardPerSecond / rawPerSecond };
}
