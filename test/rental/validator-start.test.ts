// Where a program starts (patent 003 [0094], [0095]): the last validator record of the program whose attest verifies
// against one of the keyfile's validator keys, found reading the trail backwards, so what it reads does not grow with
// the records before it (200,000 here; `npm run bench` times 10,000 against 1,000,000); else the keyfile's offset.
// Deleting the records before it changes nothing; forged and edited validator records are passed over; the walk from the start checks the record.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, uintToBytes, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256 } from '../../src/crypto/index.js';
import { encodeRecordLine, type AuditRecord } from '../../src/rental/audit-record.js';
import { validateOffline } from '../../src/rental/offline-validation.js';
import { createKeyfile, verifyKeyfile } from '../../src/rental/rental-keyfile.js';
import { summariseUsage } from '../../src/rental/thresholds.js';
import { TrailFile } from '../../src/rental/trail-file.js';
import { lastTrailRecord } from '../../src/rental/trail-tail.js';
import { formatUsageText, usageBinding, type UsageSummary } from '../../src/rental/usage-text.js';
import { validateTrail } from '../../src/rental/validate-trail.js';
import { findValidationStart } from '../../src/rental/validation-start.js';
import { claimFor, signValidatorClaim, validatorRecordText } from '../../src/rental/validator-record.js';
import { closeVendor, initVendor, openVendor, type VendorKeys } from '../../src/rental/vendor.js';
import { writeRecord } from '../../src/rental/write.js';
import { vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-validation-start-'));
let vendor: VendorKeys;
const validator = ed25519KeyFromSeed(generateEd25519Seed());
let dirs = 0;

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('pw'));
  vendor = await openVendor(join(root, 'vendor'), utf8('pw'));
}, 30_000);
afterAll(() => {
  closeVendor(vendor);
  rmSync(root, { recursive: true, force: true });
});

async function setup(options: { counter?: bigint; offset?: bigint; trail?: TrailFile } = {}) {
  const card = await vscRentalCard({ counter: options.counter ?? options.offset ?? 0n });
  const offset = options.offset ?? options.counter ?? 0n;
  const keyfile = verifyKeyfile(createKeyfile(vendor, {
    program: 'WP', card: { ...card.trustRoot, kind: 'software' }, offset, acceptedKinds: ['software'], validatorKeys: [validator.publicKey],
  }, { decoyBits: 0 }), vendor.signingKey);
  const binding = usageBinding('WP', card.trustRoot.publicKey);
  const trail = options.trail ?? TrailFile.inDirectory(join(root, `trail-${dirs++}`));
  const write = (text: string) => writeRecord(text, { card: card.rental, trustRoot: card.trustRoot, append: (record) => trail.append(record) });
  const use = async (n: number) => {
    for (let i = 0; i < n; i++) await write(formatUsageText({ ...binding, kind: 'interval' }));
  };
  /** A validator record at the card's counter, as the service would attest it (its digest here stands for any). */
  const certify = async (summary: Omit<UsageSummary, 'next'>, signer = validator) => {
    const counter = await card.rental.getCounter();
    const claim = claimFor(keyfile, counter, sha256(uintToBytes(counter, 16)), { ...summary, next: counter });
    return write(validatorRecordText(binding, claim, signValidatorClaim(signer, claim)));
  };
  return { card, keyfile, binding, trail, write, use, certify };
}

const zero = { intervals: 0n, executions: 0n, skipped: 0n, minutesByHour: Array.from({ length: 24 }, () => 0n), lastAudit: undefined };

describe('findValidationStart ([0094], [0095])', () => {
  it('without a validator record: the keyfile\'s offset, an empty summary, from the first line', async () => {
    const { keyfile, trail, use } = await setup({ offset: 3n });
    await use(2);
    const start = await findValidationStart(keyfile, trail.path);
    expect(start).toMatchObject({ offset: 3n, position: 0, validatorKey: undefined, summary: { next: 3n, intervals: 0n } });
    const missing = await findValidationStart(keyfile, join(root, 'no-such-trail.jsonl'));
    expect(missing).toMatchObject({ offset: 3n, position: 0 });
  });

  it('the last attested validator record: its counter, its summary, its line; the walk from there validates with the card', async () => {
    const { card, keyfile, binding, trail, use, certify } = await setup();
    await use(2);
    await certify({ ...zero, intervals: 2n });
    await use(1);
    const second = await certify({ ...zero, intervals: 3n });
    await use(2);
    const start = await findValidationStart(keyfile, trail.path);
    expect(start).toMatchObject({ offset: second.counter, summary: { next: second.counter, intervals: 3n } });
    expect(toHex(start.validatorKey!)).toBe(toHex(validator.publicKey));
    const lines = readFileSync(trail.path, 'utf8').split('\n');
    expect(start.position).toBe(Buffer.byteLength(lines.slice(0, 4).map((line) => `${line}\n`).join('')));
    const checked = await validateTrail({ card: card.rental, trustRoot: card.trustRoot, offset: start.offset, trail: { append: (r) => trail.append(r), recordBatches: () => start.records() } });
    expect(checked.records).toBe(4);
    const usage = summariseUsage((await collect(start.records())).filter((r) => r.counter >= start.offset), binding, { base: start.summary });
    expect(usage.intervals).toBe(5n);
  });

  it('deleting the records before the validator record changes nothing; deleting it falls back to the one before', async () => {
    const { card, keyfile, trail, use, certify } = await setup();
    await use(3);
    const first = await certify({ ...zero, intervals: 3n });
    await use(2);
    const second = await certify({ ...zero, intervals: 5n });
    await use(1);
    const lines = readFileSync(trail.path, 'utf8').split('\n').slice(0, -1);
    // The customer keeps only the validator record and what follows.
    writeFileSync(trail.path, lines.slice(6).map((line) => `${line}\n`).join(''));
    const start = await findValidationStart(keyfile, trail.path);
    expect(start).toMatchObject({ offset: second.counter, position: 0 });
    const trailView = { append: (r: AuditRecord) => trail.append(r), recordBatches: () => start.records() };
    await expect(validateTrail({ card: card.rental, trustRoot: card.trustRoot, offset: start.offset, trail: trailView })).resolves.toMatchObject({ valid: true });
    // Without its line, the start is the first validator record, and the walk from it finds the hole.
    writeFileSync(trail.path, [...lines.slice(0, 6), ...lines.slice(7)].map((line) => `${line}\n`).join(''));
    const fallback = await findValidationStart(keyfile, trail.path);
    expect(fallback.offset).toBe(first.counter);
    await expect(validateTrail({ card: card.rental, trustRoot: card.trustRoot, offset: fallback.offset, trail: { ...trailView, recordBatches: () => fallback.records() } })).rejects.toMatchObject({ reason: 'hole' });
  });

  it('passes over a validator record with an edited summary, one signed by another service, and lines that are no records', async () => {
    const { keyfile, trail, use, certify, write } = await setup();
    await use(1);
    const honest = await certify({ ...zero, intervals: 1n });
    await use(1);
    await certify({ ...zero, intervals: 0n }, ed25519KeyFromSeed(generateEd25519Seed()));
    await write(honest.text.replace(`validated ${honest.counter}`, `validated ${honest.counter + 3n}`).replace('intervals=1', 'intervals=0'));
    writeFileSync(trail.path, `${readFileSync(trail.path, 'utf8')}not a record\n{"torn`);
    const start = await findValidationStart(keyfile, trail.path, { chunkBytes: 7 });
    expect(start).toMatchObject({ offset: honest.counter, summary: { intervals: 1n } });
  });

  it('stops at the first record below the keyfile\'s offset: the start is the line after it', async () => {
    const trail = TrailFile.inDirectory(join(root, `trail-${dirs++}`));
    const before = await setup({ trail });
    await before.use(3);
    const size = readFileSync(trail.path).length;
    const { keyfile } = await setup({ counter: 3n, offset: 3n, trail });
    const start = await findValidationStart(keyfile, trail.path);
    expect(start).toMatchObject({ offset: 3n, position: size });
  });

  it('reads only the tail of a 200,000-record trail: the bytes read do not grow with the records before the validator record (npm run bench times 10,000 against 1,000,000)', async () => {
    const count = 200_000;
    const { card, keyfile, trail, use, certify } = await setup({ counter: BigInt(count), offset: 0n });
    // Records 0..999,999 as precomputed lines: never read, so their signatures need not verify.
    const signature = '00'.repeat(64);
    const fd = openSync(trail.path, 'a', 0o600);
    try {
      const lines: string[] = [];
      for (let i = 0; i < count; i++) {
        lines.push(`{"nonce":"${i.toString(16).padStart(32, '0')}","text":"SS execution","counter":"${i.toString(16).padStart(32, '0')}","signature":"${signature}"}\n`);
        if (lines.length === 20_000) writeSync(fd, lines.splice(0).join(''));
      }
    } finally {
      closeSync(fd);
    }
    const attested = await certify({ ...zero, intervals: 7n });
    await use(1000);
    const size = readFileSync(trail.path).length;
    expect(size).toBeGreaterThan(40_000_000);
    const start = await findValidationStart(keyfile, trail.path);
    expect(start.offset).toBe(attested.counter);
    // The 1,001 records after the validator record are about 250 KB: the search read those, and not the 40 MB before.
    expect(start.bytesRead).toBeLessThan(400_000);
    // And the walk from there, offline and with the card, checks the 1,001 records after the start only.
    const checked = await validateOffline({ keyfile, records: start.records(), last: (await lastTrailRecord(trail.path))! });
    expect(checked).toMatchObject({ start: BigInt(count), from: 'validator-record', records: 1001, summary: { next: BigInt(count + 1001), intervals: 1007n } });
    const validated = await validateTrail({ card: card.rental, trustRoot: card.trustRoot, offset: start.offset, trail: { append: (r) => trail.append(r), recordBatches: () => start.records() } });
    expect(validated.records).toBe(1002);
  }, 120_000);
});

async function collect(batches: AsyncIterable<readonly AuditRecord[]>): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  for await (const batch of batches) records.push(...batch);
  return records;
}

// Keeps encodeRecordLine's format in view: the precomputed lines above must be what it writes.
it('the precomputed line format is the trail\'s own', () => {
  const record: AuditRecord = { nonce: uintToBytes(5n, 16), text: 'SS execution', counter: 5n, signature: new Uint8Array(64) };
  expect(encodeRecordLine(record)).toBe(`{"nonce":"${'5'.padStart(32, '0')}","text":"SS execution","counter":"${'5'.padStart(32, '0')}","signature":"${'00'.repeat(64)}"}`);
});
