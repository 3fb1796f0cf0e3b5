// Rental keyfiles and the vendor's keys (patent 003 [0063]-[0075]): vendor-signed ([0069], [0073]), the vendor's keys
// unlocked only by the vendor password ([0065]), customer information readable by the vendor only ([0069]), decoy
// bits ([0068]) around a customer information string whose place differs in every keyfile; a modified or foreign
// keyfile is refused.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { ExitCode, VscError } from '../../src/errors/index.js';
import { createKeyfile, KeyfileError, openCustomerInformation, readKeyfileUnchecked, verifyKeyfile, type KeyfileInput } from '../../src/rental/rental-keyfile.js';
import { closeVendor, initVendor, openVendor, readVendorPublic, VendorError, type VendorKeys } from '../../src/rental/vendor.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-keyfile-'));
const PASSWORD = 'vendor password';
let vendor: VendorKeys;
let other: VendorKeys;
const card = { serial: 'CARD-1', publicKey: ed25519KeyFromSeed(generateEd25519Seed()).publicKey, keyMode: 'individual' as const, kind: 'software' as const };
const input: KeyfileInput = {
  program: 'WP', card, offset: 42n, acceptedKinds: ['token', 'server-held', 'software'], rights: ['print', 'audio'], thresholds: ['intervals<=24'], customer: 'ACME Corp, cn=alice',
};

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8(PASSWORD));
  await initVendor(join(root, 'other'), 'Other Software', utf8(PASSWORD));
  vendor = await openVendor(join(root, 'vendor'), utf8(PASSWORD));
  other = await openVendor(join(root, 'other'), utf8(PASSWORD));
}, 30_000);

afterAll(() => {
  closeVendor(vendor);
  closeVendor(other);
  rmSync(root, { recursive: true, force: true });
});

describe('the vendor\'s keys ([0064]-[0065])', () => {
  it('are sealed under the vendor password: a wrong one is exit 4, a second init is refused, the file is 0600', async () => {
    const error = await openVendor(join(root, 'vendor'), utf8('wrong')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VendorError);
    expect((error as VendorError).exitCode).toBe(ExitCode.authenticationFailed);
    await expect(initVendor(join(root, 'vendor'), 'Again', utf8(PASSWORD))).rejects.toMatchObject({ code: 'vendor.exists' });
    expect(statSync(join(root, 'vendor', 'vendor.json')).mode & 0o777).toBe(0o600);
    expect(readVendorPublic(join(root, 'vendor')).signingKey).toEqual(vendor.signingKey);
  });
});

describe('a keyfile ([0066]-[0075])', () => {
  it('round-trips every field under the vendor\'s signature', () => {
    const keyfile = verifyKeyfile(createKeyfile(vendor, input), vendor.signingKey);
    expect(keyfile).toMatchObject({ program: 'WP', offset: 42n, rights: ['print', 'audio'], thresholds: ['intervals<=24'], vendor: { name: 'Example Software' } });
    expect(keyfile.card).toEqual(card);
  });

  it('[0068]: carries about 480,000 decoy bits, and [0069]: the customer information sits at a different place in each', () => {
    const a = createKeyfile(vendor, input);
    const b = createKeyfile(vendor, input);
    expect(a.length).toBeGreaterThan(60_000);
    expect(a.length).toBeLessThan(62_000);
    const offset = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getUint32(5);
    expect(offset(a)).not.toBe(offset(b));
  });

  it('[0069]: the customer information opens with the issuing vendor\'s key only', () => {
    const keyfile = verifyKeyfile(createKeyfile(vendor, input), vendor.signingKey);
    expect(openCustomerInformation(vendor, keyfile)).toBe('ACME Corp, cn=alice');
    expect(() => openCustomerInformation(other, keyfile)).toThrow(KeyfileError);
    expect(Buffer.from(keyfile.bytes).includes(Buffer.from('ACME'))).toBe(false);
  });

  it('[0073]: a modified keyfile is refused (exit 3), wherever the change is', () => {
    const bytes = createKeyfile(vendor, input, { decoyBits: 800 });
    for (const at of [0, 5, 17, 20, bytes.length >> 1, bytes.length - 1]) {
      const modified = bytes.slice();
      modified[at] = modified[at]! ^ 0x01;
      const error = (() => {
        try {
          verifyKeyfile(modified, vendor.signingKey);
          return undefined;
        } catch (caught) {
          return caught;
        }
      })();
      expect(error, `byte ${at}`).toBeInstanceOf(KeyfileError);
      expect((error as KeyfileError).exitCode).toBe(ExitCode.refusedByState);
    }
  });

  it('a keyfile of another vendor is refused as foreign', () => {
    expect(() => verifyKeyfile(createKeyfile(other, input), vendor.signingKey)).toThrow(/issued by vendor key .*not by this program's vendor/);
  });

  it('a card of a kind the keyfile does not accept cannot be put in it', () => {
    expect(() => createKeyfile(vendor, { ...input, acceptedKinds: ['token', 'server-held'] })).toThrow(/kind software, which this keyfile would not accept/);
  });

  it('parsing any bytes only ever returns or throws KeyfileError (fuzz)', () => {
    const valid = createKeyfile(vendor, input, { decoyBits: 64 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(valid.length), (noise, cut) => {
        for (const bytes of [noise, valid.subarray(0, cut), Uint8Array.from([...valid.subarray(0, cut), ...noise])]) {
          try {
            readKeyfileUnchecked(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(VscError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
