// [0062] recovery: "The vendor may, for example, issue a new keyfile upon some customers' requests." After a hole the
// customer's trail cannot pass, the vendor reissues the keyfile with the trail starting past it: same program, card,
// kinds, rights, thresholds, validators and customer, a new id, the old id named as replaced. A keyfile of another
// vendor, or an offset below the old one, is refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { createKeyfile, openCustomerInformation, reissueKeyfile, verifyKeyfile, type KeyfileInput } from '../../src/rental/rental-keyfile.js';
import { TrailFile } from '../../src/rental/trail-file.js';
import { validateTrail } from '../../src/rental/validate-trail.js';
import { closeVendor, initVendor, openVendor, type VendorKeys } from '../../src/rental/vendor.js';
import { writeRecord } from '../../src/rental/write.js';
import { thrown, vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-keyfile-reissue-'));
let vendor: VendorKeys;
let other: VendorKeys;
const validatorKey = ed25519KeyFromSeed(generateEd25519Seed()).publicKey;
const attesterKey = ed25519KeyFromSeed(generateEd25519Seed()).publicKey;

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('pw'));
  await initVendor(join(root, 'other'), 'Other Software', utf8('pw'));
  vendor = await openVendor(join(root, 'vendor'), utf8('pw'));
  other = await openVendor(join(root, 'other'), utf8('pw'));
}, 30_000);
afterAll(() => {
  closeVendor(vendor);
  closeVendor(other);
  rmSync(root, { recursive: true, force: true });
});

describe('vsc keyfile reissue ([0062])', () => {
  it('keeps everything but the id and the offset, names the keyfile it replaces, and re-seals the customer to the new id', () => {
    const card = { serial: 'CARD-9', publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey, keyMode: 'individual' as const, kind: 'token' as const };
    const input: KeyfileInput = {
      program: 'WP', card, offset: 10n, acceptedKinds: ['token'], rights: ['print'], thresholds: ['intervals<24'], customer: 'ACME, cn=alice', validatorKeys: [validatorKey], attesterKey,
    };
    const old = verifyKeyfile(createKeyfile(vendor, input, { decoyBits: 0 }), vendor.signingKey);
    const { bytes } = reissueKeyfile(vendor, old.bytes, 25n);
    const fresh = verifyKeyfile(bytes, vendor.signingKey);
    expect(fresh).toMatchObject({ program: 'WP', offset: 25n, card, acceptedKinds: ['token'], rights: ['print'], thresholds: ['intervals<24'] });
    expect(fresh.validatorKeys.map(toHex)).toEqual([toHex(validatorKey)]);
    expect(toHex(fresh.attesterKey!)).toBe(toHex(attesterKey));
    expect(toHex(fresh.id)).not.toBe(toHex(old.id));
    expect(toHex(fresh.replaces!)).toBe(toHex(old.id));
    expect(openCustomerInformation(vendor, fresh)).toBe('ACME, cn=alice');
    expect(verifyKeyfile(reissueKeyfile(vendor, old.bytes, 10n).bytes, vendor.signingKey).offset).toBe(10n);
  });

  it('refuses a keyfile another vendor signed, a modified one, and an offset below the old one (exit 3)', () => {
    const card = { serial: 'CARD-9', publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey, keyMode: 'individual' as const, kind: 'software' as const };
    const input: KeyfileInput = { program: 'WP', card, offset: 10n, acceptedKinds: ['software'] };
    expect(thrown(() => reissueKeyfile(vendor, createKeyfile(other, input, { decoyBits: 0 }), 20n))).toMatchObject({ code: 'keyfile.foreign', exitCode: ExitCode.refusedByState });
    const mine = createKeyfile(vendor, input, { decoyBits: 0 });
    const modified = mine.slice();
    modified[modified.length - 1] = modified[modified.length - 1]! ^ 0x01;
    expect(thrown(() => reissueKeyfile(vendor, modified, 20n))).toMatchObject({ code: 'keyfile.signature' });
    expect(thrown(() => reissueKeyfile(vendor, mine, 9n))).toMatchObject({ code: 'keyfile.offset', exitCode: 3, message: expect.stringMatching(/new offset 9 is below the old keyfile's offset 10/) });
  });

  it('a trail with a hole fails the old keyfile and passes the reissued one, which starts past the hole', async () => {
    const { rental, trustRoot } = await vscRentalCard();
    const trail = TrailFile.inDirectory(join(root, 'trail'));
    const write = (text: string) => writeRecord(text, { card: rental, trustRoot, append: (record) => trail.append(record) });
    await write('WP execution');
    await writeRecord('lost to a disk error', { card: rental, trustRoot, append: () => undefined });
    await write('WP execution');
    const old = createKeyfile(vendor, { program: 'WP', card: { ...trustRoot, kind: 'software' }, offset: 0n, acceptedKinds: ['software'] }, { decoyBits: 0 });
    const check = (offset: bigint) => validateTrail({ card: rental, trustRoot, offset, trail });
    await expect(check(verifyKeyfile(old, vendor.signingKey).offset)).rejects.toMatchObject({ reason: 'hole' });
    const fresh = verifyKeyfile(reissueKeyfile(vendor, old, 2n).bytes, vendor.signingKey);
    await expect(check(fresh.offset)).resolves.toMatchObject({ valid: true, skipped: 1 });
  });
});
