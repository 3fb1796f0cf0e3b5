// A trail checked without the card (patent 003 [0094] the validation service, [0104] the vendor's remote audit):
// from the keyfile's offset, or from a validator record whose attest verifies against one of the keyfile's validator
// keys; every record after it card-signed and consecutive, bridges accepted as ValidateTrail accepts them; the usage
// is the attested summary plus the records since ([0094]); a forged or edited validator record starts nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256 } from '../../src/crypto/index.js';
import { recordDigest, type AuditRecord } from '../../src/rental/audit-record.js';
import { validateOffline } from '../../src/rental/offline-validation.js';
import { createKeyfile, verifyKeyfile, type Keyfile } from '../../src/rental/rental-keyfile.js';
import { mergeUsageSummaries, summariseUsage } from '../../src/rental/thresholds.js';
import { formatUsageText, usageBinding, type UsageSummary } from '../../src/rental/usage-text.js';
import { claimFor, signValidatorClaim, validatorRecordText } from '../../src/rental/validator-record.js';
import { closeVendor, initVendor, openVendor, type VendorKeys } from '../../src/rental/vendor.js';
import { writeRecord } from '../../src/rental/write.js';
import { vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-offline-'));
let vendor: VendorKeys;
const validator = ed25519KeyFromSeed(generateEd25519Seed());
const stranger = ed25519KeyFromSeed(generateEd25519Seed());

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('vendor password'));
  vendor = await openVendor(join(root, 'vendor'), utf8('vendor password'));
}, 30_000);
afterAll(() => {
  closeVendor(vendor);
  rmSync(root, { recursive: true, force: true });
});

/** A card, a keyfile for WP on it naming the validator, and a trail kept in memory. */
async function setup(offset = 0n) {
  const card = await vscRentalCard({ counter: offset });
  const keyfile: Keyfile = verifyKeyfile(createKeyfile(vendor, {
    program: 'WP', card: { ...card.trustRoot, kind: 'software' }, offset, acceptedKinds: ['software'], validatorKeys: [validator.publicKey],
  }, { decoyBits: 0 }), vendor.signingKey);
  const binding = usageBinding('WP', card.trustRoot.publicKey);
  const trail: AuditRecord[] = [];
  const write = (text: string) => writeRecord(text, { card: card.rental, trustRoot: card.trustRoot, append: (record) => void trail.push(record) });
  const use = (kind: 'interval' | 'execution') => write(formatUsageText({ ...binding, kind }));
  /** The validator record at the card's counter, attested by `signer` over the records from `from` (a trail index). */
  const certify = async (from: number, summary: UsageSummary, signer = validator) => {
    const counter = await card.rental.getCounter();
    const digest = sha256(...trail.slice(from).map((record) => recordDigest(record, card.trustRoot)));
    const claim = claimFor(keyfile, counter, digest, summary);
    return write(validatorRecordText(binding, claim, signValidatorClaim(signer, claim)));
  };
  return { card, keyfile, binding, trail, write, use, certify };
}

describe('from the keyfile\'s offset ([0060] step [6], [0095])', () => {
  it('checks every record and sums the program\'s usage up to the last record; other programs do not count', async () => {
    const { keyfile, binding, trail, use, write } = await setup(5n);
    await use('interval');
    await write('SS execution public key 768230aac8239d9df88cfe3c7b832a00');
    await use('execution');
    await use('interval');
    const checked = await validateOffline({ keyfile, records: trail });
    expect(checked).toMatchObject({ start: 5n, from: 'offset', records: 4, base: undefined, last: trail[3] });
    expect(checked.summary).toEqual(summariseUsage(trail, binding, { from: 5n }));
    expect(checked.summary).toMatchObject({ next: 9n, intervals: 2n, executions: 1n });
    expect(toHex(checked.recordsDigest)).toBe(toHex(sha256(...trail.map((record) => recordDigest(record, { ...keyfile.card })))));
  });

  it('no records: the summary is empty at the offset', async () => {
    const { keyfile } = await setup(7n);
    const checked = await validateOffline({ keyfile, records: [] });
    expect(checked).toMatchObject({ start: 7n, records: 0, last: undefined, summary: { next: 7n, intervals: 0n } });
    expect(toHex(checked.recordsDigest)).toBe(toHex(sha256()));
  });

  it('refuses a hole, a modified record, another card\'s record, and a trail missing its oldest records', async () => {
    const { keyfile, trail, use } = await setup();
    for (let i = 0; i < 5; i++) await use('interval');
    await expect(validateOffline({ keyfile, records: [...trail.slice(0, 2), ...trail.slice(3)] })).rejects.toMatchObject({ reason: 'hole' });
    // Right before the last record too: without the card there is no "current" to be behind, only a hole.
    const beforeLast = await validateOffline({ keyfile, records: [...trail.slice(0, 3), trail[4]!] }).catch((error: unknown) => error);
    expect(beforeLast).toMatchObject({ reason: 'hole', message: expect.stringMatching(/counter 3 is missing/) });
    await expect(validateOffline({ keyfile, records: [...trail.slice(0, 1), ...trail.slice(2, 4), trail[1]!] })).rejects.toMatchObject({ reason: 'order' });
    const modified = trail.map((record, i) => (i === 2 ? { ...record, text: record.text.replace('15', '14') } : record));
    await expect(validateOffline({ keyfile, records: modified })).rejects.toMatchObject({ reason: 'signature' });
    await expect(validateOffline({ keyfile, records: trail.slice(1) })).rejects.toMatchObject({ reason: 'offset' });
    const other = await setup();
    await other.use('interval');
    await expect(validateOffline({ keyfile, records: [other.trail[0]!, ...trail.slice(1)] })).rejects.toMatchObject({ reason: 'signature' });
  });

  it('accepts a card-signed bridge over skipped counter values and charges them (DESIGN.md "Counters that never roll back")', async () => {
    const { card, keyfile, trail, use, write } = await setup();
    await use('interval');
    // Two counter values signed and never kept, as a recovered card's lost window leaves them.
    await writeRecord('lost', { card: card.rental, trustRoot: card.trustRoot, append: () => undefined });
    await writeRecord('lost', { card: card.rental, trustRoot: card.trustRoot, append: () => undefined });
    const counter = await card.rental.getCounter();
    await write(`skipped 1 ${counter - 1n}`);
    await use('execution');
    const checked = await validateOffline({ keyfile, records: trail });
    expect(checked.bridged).toEqual([{ from: 1n, to: counter - 1n }]);
    expect(checked.summary).toMatchObject({ intervals: 1n, executions: 1n, skipped: counter - 1n });
  });
});

describe('from a validator record ([0094])', () => {
  it('starts at an attested validator record: its summary plus the records since, without the records before it', async () => {
    const { keyfile, binding, trail, use, certify } = await setup();
    for (let i = 0; i < 3; i++) await use('interval');
    const first = summariseUsage(trail, binding, { from: 0n });
    const validated = await certify(0, { ...first, next: 3n });
    await use('execution');
    await use('interval');
    const checked = await validateOffline({ keyfile, records: trail.slice(3) });
    expect(checked).toMatchObject({ start: validated.counter, from: 'validator-record', records: 3 });
    expect(toHex(checked.validatorKey!)).toBe(toHex(validator.publicKey));
    expect(checked.summary).toEqual({ ...summariseUsage(trail, binding, { from: 0n }), next: 6n });
    expect(checked.summary).toEqual(mergeUsageSummaries(checked.base!, summariseUsage(trail.slice(3), binding, { from: 3n })));
  });

  it('a validator record whose summary was edited, or signed by a service the keyfile does not name, starts nothing', async () => {
    const { card, keyfile, binding, trail, use, certify, write } = await setup();
    for (let i = 0; i < 3; i++) await use('interval');
    const honest = await certify(0, { ...summariseUsage(trail, binding, { from: 0n }), next: 3n });
    // The customer writes (card-signed) a copy with a smaller summary and the honest attest.
    await write(honest.text.replace('intervals=3', 'intervals=0').replace(/validated 3 /, 'validated 4 '));
    await expect(validateOffline({ keyfile, records: trail.slice(4) })).rejects.toMatchObject({ reason: 'offset', message: expect.stringMatching(/vouches for nothing: .*does not verify/) });
    const next = await card.rental.getCounter();
    await certify(0, { ...summariseUsage(trail, binding, { from: 0n }), next }, stranger);
    await expect(validateOffline({ keyfile, records: trail.slice(5) })).rejects.toMatchObject({ reason: 'offset' });
    // From the offset the same trail is valid: the forged records are only records.
    await expect(validateOffline({ keyfile, records: trail })).resolves.toMatchObject({ start: 0n, records: 6 });
  });

  it('the validator record itself must be card-signed', async () => {
    const { keyfile, binding, trail, use, certify } = await setup();
    await use('interval');
    await certify(0, { ...summariseUsage(trail, binding, { from: 0n }), next: 1n });
    await use('interval');
    const unsigned = { ...trail[1]!, signature: new Uint8Array(64) };
    await expect(validateOffline({ keyfile, records: [unsigned, trail[2]!] })).rejects.toMatchObject({ reason: 'signature' });
  });

  it('records read in batches need the trail\'s last record', async () => {
    const { keyfile, trail, use } = await setup();
    await use('interval');
    const batches = async function* () {
      yield trail;
    };
    await expect(validateOffline({ keyfile, records: batches() })).rejects.toMatchObject({ reason: 'input' });
    await expect(validateOffline({ keyfile, records: batches(), last: trail[0]! })).resolves.toMatchObject({ records: 1 });
  });
});

describe('mergeUsageSummaries ([0094])', () => {
  it('adds counts and minutes, keeps the newest audit, and refuses a later summary that ends first', async () => {
    const { binding } = await setup();
    const earlier = summariseUsage([
      { counter: 0n, text: formatUsageText({ ...binding, kind: 'interval' }) },
      { counter: 1n, text: formatUsageText({ ...binding, kind: 'audit', nonce: '11'.repeat(16), at: { epochMinutes: 100, offsetMinutes: 0 } }) },
    ], binding, { from: 0n });
    const later = summariseUsage([{ counter: 3n, text: formatUsageText({ ...binding, kind: 'units', minutes: 30, at: { epochMinutes: 600, offsetMinutes: 60 } }) }], binding, { from: 2n });
    const merged = mergeUsageSummaries(earlier, later);
    expect(merged).toMatchObject({ next: 4n, intervals: 1n, executions: 0n, lastAudit: earlier.lastAudit });
    expect(merged.minutesByHour[11]).toBe(30n);
    expect(() => mergeUsageSummaries(later, earlier)).toThrow(/expected the later summary to end at or after/);
  });
});
