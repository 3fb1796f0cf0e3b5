// Rental trail validation (patent 003 [0060], [0094]): full validation in records/s against the machine's Ed25519
// verification bound (verifies/s of node:crypto on one core × cores, measured in the same run).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { signedDigest } from '../src/apdu/index.js';
import { ed25519KeyFromSeed, ed25519Verifier, generateEd25519Seed, type Ed25519SigningKey } from '../src/crypto/index.js';
import { checkTrail, encodeRecordLine, recordHash, SignatureVerifierPool, TrailFile, type AuditRecord, type TrustRoot } from '../src/rental/index.js';

const SERIAL = 'BENCH-RENTAL-1';
const TEXT = 'wc-rented execution public key 0123456789abcdef0123456789abcdef';

export interface SignedTrail {
  readonly path: string;
  readonly root: TrustRoot;
  readonly last: AuditRecord;
  readonly count: number;
  readonly key: Ed25519SigningKey;
  cleanup(): void;
}

/** A record as the card would sign it at `counter` (the same digest, P1 00). */
export function signRecord(key: Ed25519SigningKey, counter: bigint, text = TEXT): AuditRecord {
  const nonce = new Uint8Array(16);
  new DataView(nonce.buffer).setBigUint64(8, counter);
  const h1 = recordHash(nonce, text);
  return { nonce, text, counter, signature: key.sign(signedDigest(h1, counter, 'individual', SERIAL)) };
}

/** A trail file of `count` records, counters 0..count-1, written in large chunks. */
export function signedTrail(count: number, options: { text?: (counter: bigint) => string } = {}): SignedTrail {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-trail-'));
  const path = join(dir, 'trail.jsonl');
  const key = ed25519KeyFromSeed(generateEd25519Seed());
  const chunks: string[] = [];
  let last: AuditRecord | undefined;
  for (let i = 0; i < count; i++) {
    last = signRecord(key, BigInt(i), options.text?.(BigInt(i)));
    chunks.push(`${encodeRecordLine(last)}\n`);
  }
  writeFileSync(path, chunks.join(''), { mode: 0o600 });
  return { path, root: { publicKey: key.publicKey, serial: SERIAL, keyMode: 'individual' }, last: last!, count, key, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Ed25519 verifications per second on one core with node:crypto (the library validation uses), key imported once. */
export function verifyRatePerCore(iterations = 20_000): number {
  const key = ed25519KeyFromSeed(generateEd25519Seed());
  const messages = Array.from({ length: 256 }, (_, i) => Uint8Array.from({ length: 32 }, (_, j) => (i + j) & 0xff));
  const signatures = messages.map((message) => key.sign(message));
  const verify = ed25519Verifier(key.publicKey);
  for (let i = 0; i < 2_000; i++) verify(messages[i & 255]!, signatures[i & 255]!);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (!verify(messages[i & 255]!, signatures[i & 255]!)) throw new Error('a good signature did not verify');
  return iterations / (Number(process.hrtime.bigint() - start) / 1e9);
}

export interface FullValidationFigures {
  readonly records: number;
  readonly seconds: number;
  readonly recordsPerSecond: number;
  readonly verifyPerCore: number;
  readonly cores: number;
  /** recordsPerSecond / (verifyPerCore × cores). */
  readonly ratio: number;
}

/** The walk of ValidateTrail over a `count`-record trail file: parse, sequence checks, every signature. */
export async function measureFullValidation(count = 200_000): Promise<FullValidationFigures> {
  const trail = signedTrail(count);
  const cores = availableParallelism();
  const pool = cores > 1 ? new SignatureVerifierPool(cores) : null;
  try {
    const run = async () => {
      const start = process.hrtime.bigint();
      const result = await checkTrail({ trustRoot: trail.root, offset: 0n, records: new TrailFile(trail.path).recordBatches(), ours: trail.last, verifiers: pool });
      if (result.records !== count) throw new Error(`validated ${result.records} records, expected ${count}`);
      return Number(process.hrtime.bigint() - start) / 1e9;
    };
    await run(); // warm: workers started, code optimised, file in the page cache
    const seconds = Math.min(await run(), await run());
    const verifyPerCore = verifyRatePerCore();
    const recordsPerSecond = count / seconds;
    return { records: count, seconds, recordsPerSecond, verifyPerCore, cores, ratio: recordsPerSecond / (verifyPerCore * cores) };
  } finally {
    await pool?.close();
    trail.cleanup();
  }
}
