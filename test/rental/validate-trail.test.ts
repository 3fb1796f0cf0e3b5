// ValidateTrail of patent 003 [0060]-[0061], [0095] over the real VSC applet and a real trail file: Fig. 6's four
// records and the universal-key record of [0100] validate; every attack of [0025] and [0050] (holes, modification,
// currency) is refused with its reason, and the refusal is one readable line.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex, toHex, uintToBytes } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { recordDigest, recordHash, type AuditRecord, type TrustRoot } from '../../src/rental/audit-record.js';
import { RentalError, type RentalReason } from '../../src/rental/rental-error.js';
import { TrailFile } from '../../src/rental/trail-file.js';
import { SignatureVerifierPool } from '../../src/rental/verify-pool.js';
import { validateTrail, validationText, verifyRecords, type Trail } from '../../src/rental/validate-trail.js';
import { writeRecord, type RentalCard } from '../../src/rental/write.js';
import { vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-validate-'));
/** Two worker threads verify full batches, as on a machine with two cores. */
const pool = new SignatureVerifierPool(2);
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await pool.close();
});
let dirs = 0;

const WP_TEXT = 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3';
/** [0047]'s spreadsheet record; Fig. 6 prints it as "SS, execution public key 982..." (see below). */
const SS_TEXT = 'Application SS with public key 768230aac8239d9df88cfe3c7b832a is executing';
const nonceOf = (n: bigint) => uintToBytes(n, 16);

/** A card, its keyfile's trust root, and a trail file in a fresh 0700 directory. */
async function setup(init: Parameters<typeof vscRentalCard>[0] = {}) {
  const card = await vscRentalCard(init);
  const trail = TrailFile.inDirectory(join(root, `trail-${dirs++}`));
  const write = (text: string, nonce?: () => Uint8Array) => writeRecord(text, { card: card.rental, trustRoot: card.trustRoot, append: (r) => trail.append(r), nonce });
  return { ...card, trail, write };
}

async function refusal(promise: Promise<unknown>, reason: RentalReason): Promise<RentalError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RentalError);
  const refused = error as RentalError;
  expect({ reason: refused.reason, message: refused.message }).toMatchObject({ reason });
  expect(refused.code).toBe(`rental.${reason}`);
  expect(refused.exitCode).toBe(ExitCode.refusedByState);
  expect(refused.message).not.toContain('\n');
  return refused;
}

const lines = (trail: TrailFile) => readFileSync(trail.path, 'utf8').split('\n').slice(0, -1);
const rewrite = (trail: TrailFile, kept: string[]) => writeFileSync(trail.path, kept.map((line) => line + '\n').join(''));

describe('the patent\'s examples', () => {
  it('Fig. 6 / [0056]: nonces 96, 108, 42, 70328 (16-byte big-endian), counters 0-3, validate from offset 0 (Fig. 6 garbles record 2: its signature column says hash(hash(108, WP...),1) and its text names WP\'s key 982...; [0047]\'s SS key 768230aac8239d9df88cfe3c7b832a has 30 hex digits, not an MD5\'s 32)', async () => {
    const { rental, trustRoot, trail, write } = await setup({ counter: 0n });
    const figure6: [bigint, string][] = [[96n, WP_TEXT], [108n, SS_TEXT], [42n, WP_TEXT], [70328n, WP_TEXT]];
    for (const [nonce, text] of figure6) await write(text, () => nonceOf(nonce));
    const records = trail.readAll();
    expect(records.map((r) => [r.counter, bytesToNonce(r.nonce), r.text])).toEqual(figure6.map(([nonce, text], i) => [BigInt(i), nonce, text]));
    // "Signature of hash(hash(96, WP...), 0)": python3 sha256(h1 + (0).to_bytes(16, 'big')) with h1 of [0059] step [2].
    expect(toHex(recordHash(nonceOf(96n), WP_TEXT))).toBe('38cdf65b02cb3c492d8322662b93aaf26e6ecab37817b5edcec41a375c3c189e');
    const digests = [
      'ad16fc65ee32233bde621a32558331caec434f81d0139ef3b87a77042b23a244',
      'd2d6294dc701554a8e9751cb4f14f3ee7964658a46086e4a3759a6b71aeee306',
      'fe4c1d3117399a104d0dd2257f7d67862e54cfd089d35a5ee0b695138f2ec39f',
      'a00b5c421c2684d46f733af231eea6013bf13d219aedc683100f69db07504f43',
    ];
    records.forEach((r, i) => {
      expect(toHex(recordDigest(r, trustRoot))).toBe(digests[i]);
      expect(ed25519.verify(r.signature, fromHex(digests[i]!), trustRoot.publicKey)).toBe(true);
    });
    const result = await validateTrail({ card: rental, trustRoot, offset: 0n, trail });
    // [0060] step [2]: validation wrote Write(c) with c = 4 and checked counters 0..4.
    expect(result).toMatchObject({ valid: true, records: 5, lastCounter: 4n, skipped: 0 });
    expect(result.record.text).toBe(validationText(4n));
    expect(trail.readAll()).toHaveLength(5);
    expect(await rental.getCounter()).toBe(5n);
  });

  it('[0100]: a universal-key record signs hash(hash(96, WP...), serial_number, 0); the trail validates against key and serial', async () => {
    const universal = await setup({ keyMode: 'universal', serial: 'SN-UNIVERSAL-7' });
    await universal.write(WP_TEXT, () => nonceOf(96n));
    const [record] = universal.trail.readAll();
    // python3: sha256(h1 + b'SN-UNIVERSAL-7' + (0).to_bytes(16, 'big'))
    const digest = fromHex('2948234d44edf8a35ae33da4f1f70f2ec72de3d63b15c2b64b59514839e603d8');
    expect(toHex(recordDigest(record!, universal.trustRoot))).toBe(toHex(digest));
    expect(ed25519.verify(record!.signature, digest, universal.trustRoot.publicKey)).toBe(true);
    expect(await validateTrail({ card: universal.rental, trustRoot: universal.trustRoot, offset: 0n, trail: universal.trail })).toMatchObject({ valid: true, records: 2 });
  });

  it('[0098]: with one universal key for all customers, another customer\'s card (same key, other serial) is not the keyfile\'s card', async () => {
    const mine = await setup({ keyMode: 'universal', serial: 'SN-U-MINE' });
    const theirs = await vscRentalCard({ keyMode: 'universal', serial: 'SN-U-THEIRS', seed: mine.seed });
    await mine.write(WP_TEXT);
    const error = await refusal(validateTrail({ card: theirs.rental, trustRoot: mine.trustRoot, offset: 0n, trail: mine.trail }), 'wrong-card');
    expect(error.step).toBe(7);
  });
});

function bytesToNonce(nonce: Uint8Array): bigint {
  return BigInt(`0x${toHex(nonce)}`);
}

/** A trail of six usage records from counter 0, validated once (record 6), so the card is at 7. */
async function usedTrail() {
  const context = await setup({ counter: 0n });
  for (let i = 0; i < 6; i++) await context.write(i % 2 === 0 ? WP_TEXT : SS_TEXT);
  await validateTrail({ card: context.rental, trustRoot: context.trustRoot, offset: 0n, trail: context.trail });
  const validate = (overrides: Partial<Parameters<typeof validateTrail>[0]> = {}) =>
    validateTrail({ card: context.rental, trustRoot: context.trustRoot, offset: 0n, trail: context.trail, ...overrides });
  return { ...context, validate };
}

describe('a valid trail', () => {
  it('validates again and again, each time writing its own record first ([0060] step [2])', async () => {
    const { validate, trail, rental } = await usedTrail();
    expect(await validate()).toMatchObject({ valid: true, records: 8, lastCounter: 7n });
    expect(await validate()).toMatchObject({ valid: true, records: 9, lastCounter: 8n });
    expect(trail.readAll().map((r) => r.counter)).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(await rental.getCounter()).toBe(9n);
  });

  it('starts at the offset the caller gives ([0095]): records below it are other programs\' and are passed over', async () => {
    const { validate } = await usedTrail();
    expect(await validate({ offset: 4n })).toMatchObject({ valid: true, records: 4, lastCounter: 7n, skipped: 4 });
  });

  it('validates a fresh trail whose offset is the card\'s counter (the keyfile was made just now)', async () => {
    const { rental, trustRoot, trail } = await setup({ counter: 500n });
    expect(await validateTrail({ card: rental, trustRoot, offset: 500n, trail })).toMatchObject({ valid: true, records: 1, lastCounter: 500n });
  });

  it('checks signatures in batches of any size with the same outcome', async () => {
    const { validate, trail } = await usedTrail();
    for (const batchSize of [1, 2, 3, 1000]) {
      for (const verifiers of [null, pool]) expect(await validate({ batchSize, verifiers })).toMatchObject({ valid: true });
    }
    const records = trail.readAll();
    const { trustRoot } = await setup();
    expect(verifyRecords(records, trustRoot)).toBe(0);
  });
});

describe('every attack is refused with its reason ([0025], [0050], [0061])', () => {
  it('a deleted record: hole', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    kept.splice(3, 1);
    rewrite(trail, kept);
    const error = await refusal(validate(), 'hole');
    expect(error.message).toBe('trail refused: trail line 4 has counter 4 after 2: counter 3 is missing');
    expect(error.line).toBe(4);
  });

  it('the oldest records deleted: offset (the offset comes from the keyfile, never from the trail)', async () => {
    const { trail, validate } = await usedTrail();
    rewrite(trail, lines(trail).slice(2));
    const error = await refusal(validate(), 'offset');
    expect(error.message).toContain('not the offset 0: its oldest records were deleted');
  });

  it('the records at the offset deleted, with older ones kept: offset', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    kept.splice(2, 2);
    rewrite(trail, kept);
    await refusal(validate({ offset: 2n }), 'offset');
  });

  it('reordered records: order', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    [kept[2], kept[3]] = [kept[3]!, kept[2]!];
    rewrite(trail, kept);
    expect((await refusal(validate(), 'order')).message).toContain('the records are out of order');
  });

  it('an older record moved after newer ones, below the offset: order', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    const [first] = kept.splice(0, 1);
    kept.splice(4, 0, first!);
    rewrite(trail, kept);
    await refusal(validate({ offset: 1n }), 'order');
  });

  it('a record repeated: repeat', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    kept.splice(3, 0, kept[2]!);
    rewrite(trail, kept);
    expect((await refusal(validate(), 'repeat')).message).toBe('trail refused: trail line 4 repeats counter 2 (expected 3)');
  });

  it('a modified text ("15 minutes" made "15 seconds", [0050] 2): signature, naming the line', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    kept[2] = kept[2]!.replace('15 minutes', '15 seconds');
    rewrite(trail, kept);
    const error = await refusal(validate(), 'signature');
    expect(error.line).toBe(3);
    expect(error.message).toContain('trail line 3 (counter 2) has a signature that does not verify');
  });

  it('a bad signature is reported before a later sequence failure (the first failure in trail order wins)', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    kept[2] = kept[2]!.replace('15 minutes', '15 seconds');
    kept.splice(4, 1);
    rewrite(trail, kept);
    for (const batchSize of [1, 2, 1024]) {
      for (const verifiers of [null, pool]) expect((await refusal(validate({ batchSize, verifiers }), 'signature')).line).toBe(3);
    }
  });

  it('a truncated trail (the last line cut): truncated, and nothing is glued to the torn line', async () => {
    const { trail, validate } = await usedTrail();
    const text = readFileSync(trail.path, 'utf8');
    writeFileSync(trail.path, text.slice(0, text.length - 60));
    const error = await refusal(validate(), 'truncated');
    expect(error.step).toBe(9);
    expect(readFileSync(trail.path, 'utf8')).toBe(text.slice(0, text.length - 60));
  });

  it('a malformed line in the middle: malformed', async () => {
    const { trail, validate } = await usedTrail();
    const kept = lines(trail);
    kept[3] = kept[3]!.replace('"counter"', '"Counter"');
    rewrite(trail, kept);
    expect((await refusal(validate(), 'malformed')).line).toBe(4);
  });

  it('a lost trail, emptied or deleted: lost', async () => {
    const emptied = await usedTrail();
    writeFileSync(emptied.trail.path, '');
    expect((await refusal(emptied.validate(), 'lost')).message).toContain('the trail was lost or emptied');
    const deleted = await usedTrail();
    rmSync(deleted.trail.path);
    await refusal(deleted.validate(), 'lost');
  });

  it('a stale trail restored from a backup after more records were signed ([0025]): stale', async () => {
    const { trail, validate, write } = await usedTrail();
    const backup = join(root, `backup-${dirs++}.jsonl`);
    copyFileSync(trail.path, backup);
    await write(WP_TEXT);
    await write(WP_TEXT);
    copyFileSync(backup, trail.path);
    const error = await refusal(validate(), 'stale');
    expect(error.message).toBe('trail refused: the trail ends before counter 7 but the card is at 9: counters 7..8 are missing (an old trail restored from a backup, or its newest records deleted)');
  });

  it('records copied from another card (signed by another key): signature', async () => {
    const { trail, validate } = await usedTrail();
    const other = await setup({ serial: 'SN-RENT-1' });
    for (let i = 0; i < 3; i++) await other.write(WP_TEXT);
    const kept = lines(trail);
    kept[2] = lines(other.trail)[2]!;
    rewrite(trail, kept);
    expect((await refusal(validate(), 'signature')).line).toBe(3);
  });

  it('a card other than the keyfile\'s (the trust root of another card): wrong-card at Write step [7]', async () => {
    const { trail, trustRoot } = await usedTrail();
    const other = await vscRentalCard({ serial: trustRoot.serial, counter: 7n });
    const error = await refusal(validateTrail({ card: other.rental, trustRoot, offset: 0n, trail }), 'wrong-card');
    expect(error.step).toBe(7);
    // The other card's own trust root does not fit this trail either.
    await refusal(validateTrail({ card: other.rental, trustRoot: other.trustRoot, offset: 0n, trail }), 'signature');
  });

  it('the card\'s counter rolled back (the same key, counter 3 where the trail reaches 6): rollback', async () => {
    const { trail, trustRoot, seed } = await usedTrail();
    const rolledBack = await vscRentalCard({ seed, counter: 3n });
    const error = await refusal(validateTrail({ card: rolledBack.rental, trustRoot, offset: 0n, trail }), 'rollback');
    expect(error.message).toBe('trail refused: the card signed counter 3 again, which the trail already holds up to 6: the card\'s counter was rolled back');
  });

  it('the card\'s counter below the keyfile\'s offset: rollback', async () => {
    const { trail, trustRoot, seed } = await usedTrail();
    const rolledBack = await vscRentalCard({ seed, counter: 2n });
    await refusal(validateTrail({ card: rolledBack.rental, trustRoot, offset: 5n, trail }), 'rollback');
  });

  it('the newest records deleted (not a backup, the same effect): stale', async () => {
    const { trail, validate } = await usedTrail();
    rewrite(trail, lines(trail).slice(0, -2));
    await refusal(validate(), 'stale');
  });
});

describe('a rental server that misbehaves ([0058]: programs do not trust it)', () => {
  /** A trail over an array, whose append the test can make lie. */
  function memoryTrail(records: AuditRecord[], append: (record: AuditRecord) => void): Trail {
    return { append, recordBatches: async function* () { yield records.slice(); } };
  }

  it('an append that drops the record: stale (or lost when nothing is there)', async () => {
    const { rental, trustRoot } = await setup();
    const records: AuditRecord[] = [];
    const honest = memoryTrail(records, (r) => void records.push(r));
    await writeRecord(WP_TEXT, { card: rental, trustRoot, append: honest.append });
    await refusal(validateTrail({ card: rental, trustRoot, offset: 0n, trail: memoryTrail(records, () => undefined) }), 'stale');
    await refusal(validateTrail({ card: rental, trustRoot, offset: 2n, trail: memoryTrail([], () => undefined) }), 'lost');
  });

  it('another program\'s record appended right after the one validation wrote: not-last ([0060] step [3])', async () => {
    const { rental, trustRoot } = await setup();
    const records: AuditRecord[] = [];
    await writeRecord(WP_TEXT, { card: rental, trustRoot, append: (r) => void records.push(r) });
    const busy = memoryTrail(records, async (r) => {
      records.push(r);
      await writeRecord(SS_TEXT, { card: rental, trustRoot, append: (next) => void records.push(next) });
    });
    const error = await refusal(validateTrail({ card: rental, trustRoot, offset: 0n, trail: busy }), 'not-last');
    expect(error.message).toBe('trail refused: the trail\'s last record (line 3, counter 2) is not the record just written for counter 1');
  });

  it('an old record slipped in after the one validation wrote: repeat', async () => {
    const { rental, trustRoot } = await setup();
    const records: AuditRecord[] = [];
    await writeRecord(WP_TEXT, { card: rental, trustRoot, append: (r) => void records.push(r) });
    const replaying = memoryTrail(records, (r) => {
      records.push(r);
      records.push(records[0]!);
    });
    await refusal(validateTrail({ card: rental, trustRoot, offset: 0n, trail: replaying }), 'repeat');
  });

  it('another signature between GetCounter and Write: counter (ValidateTrail step [5])', async () => {
    const { rental, trustRoot, trail } = await setup();
    let first = true;
    const card: RentalCard = {
      getCounter: async () => {
        const counter = await rental.getCounter();
        if (first) await rental.signAndIncrement(new Uint8Array(32));
        first = false;
        return counter;
      },
      signAndIncrement: (h) => rental.signAndIncrement(h),
    };
    expect((await refusal(validateTrail({ card, trustRoot, offset: 0n, trail }), 'counter')).message).toContain('ValidateTrail step [5]');
  });
});

describe('bad input is exit 2', () => {
  it.each([
    ['a negative offset', { offset: -1n }],
    ['an offset of 2^128', { offset: 1n << 128n }],
    ['a batch size of 0', { batchSize: 0 }],
    ['a trust root without a serial', { trustRoot: { publicKey: new Uint8Array(32), serial: '', keyMode: 'individual' } as TrustRoot }],
  ])('refuses %s', async (_name, overrides) => {
    const { rental, trustRoot, trail } = await setup();
    const error = await validateTrail({ card: rental, trustRoot, offset: 0n, trail, ...overrides }).then(() => undefined, (caught: unknown) => caught);
    expect(error).toMatchObject({ reason: 'input', exitCode: ExitCode.usage });
    expect(await rental.getCounter()).toBe(0n);
  });
});

describe('skipped counter ranges (DESIGN.md "Counters that never roll back")', () => {
  /** Three records, then three counter values the card signs that never reach the trail (a crash, a recover). */
  async function withLostValues() {
    const setupResult = await setup({ counter: 0n });
    for (let i = 0; i < 3; i++) await setupResult.write(WP_TEXT);
    for (let i = 0; i < 3; i++) await setupResult.rental.signAndIncrement(new Uint8Array(32));
    return setupResult;
  }

  it('are accepted when a card-signed record at the floor names exactly the range, and reported for worst-case charging', async () => {
    const { rental, trustRoot, trail, write } = await withLostValues();
    const bridge = await write('skipped 3 5');
    expect(bridge.counter).toBe(6n);
    const result = await validateTrail({ card: rental, trustRoot, offset: 0n, trail });
    expect(result).toMatchObject({ valid: true, records: 5, lastCounter: 7n, bridged: [{ from: 3n, to: 5n }] });
  });

  it('are refused when no bridge names them (the trail looks restored: stale), or the bridge names another range (a hole)', async () => {
    const unbridged = await withLostValues();
    await refusal(validateTrail({ card: unbridged.rental, trustRoot: unbridged.trustRoot, offset: 0n, trail: unbridged.trail }), 'stale');
    const wrong = await withLostValues();
    await wrong.write('skipped 3 4');
    await refusal(validateTrail({ card: wrong.rental, trustRoot: wrong.trustRoot, offset: 0n, trail: wrong.trail }), 'hole');
  });

  it('a bridge over records the trail held is no way to hide them: deleting records needs a bridge at a counter the card already signed', async () => {
    const { rental, trustRoot, trail, write } = await setup({ counter: 0n });
    for (let i = 0; i < 4; i++) await write(WP_TEXT);
    // Delete counters 1 and 2 and put a bridge naming them: it can only be signed at a new counter (4), not at 3.
    await write('skipped 1 2');
    rewrite(trail, lines(trail).filter((_, index) => index !== 1 && index !== 2));
    await refusal(validateTrail({ card: rental, trustRoot, offset: 0n, trail }), 'hole');
  });
});

