// The record texts the license applet signs into the rental trail (src/license/license-record-text.ts; patent 003
// [0056] record "string"): the licensor digest, the exact texts, strict parsing and round trips.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import {
  formatLicenseRecordText, LicenseError, licensorDigest, MAX_CODE, MAX_FIRM_ITEMS, MAX_UNITS, parseContainerRecordText, parseLicenseRecordText,
  type ContainerRecordText, type LicenseRecordText,
} from '../../src/license/index.js';
import { LICENSOR, thrown } from '../support/index.js';

const LD = licensorDigest(LICENSOR.publicKey);
const DIGEST = 'ab'.repeat(32);

describe('licensorDigest', () => {
  it('is the first 16 bytes of SHA-256 of the key, lowercase hex (checked against node:crypto)', () => {
    expect(LD).toBe(createHash('sha256').update(LICENSOR.publicKey).digest('hex').slice(0, 32));
    expect(LD).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect((thrown(() => licensorDigest(new Uint8Array(31))) as LicenseError).reason).toBe('input');
  });
});

describe('license record texts', () => {
  it.each<[LicenseRecordText, string]>([
    [{ kind: 'use', licensor: LD, firmCode: 10101, productCode: 7, features: 3, units: 2, left: 98, at: 1_800_000_000 }, `license use ${LD} 10101 7 features 3 units 2 left 98 at 1800000000`],
    [{ kind: 'use', licensor: LD, firmCode: 0, productCode: 0, features: 0, units: 0, left: 'unlimited', at: 0 }, `license use ${LD} 0 0 features 0 units 0 left unlimited at 0`],
    [{ kind: 'update', licensor: LD, firmCode: 10101, counter: 1, digest: DIGEST }, `license update ${LD} 10101 counter 1 digest ${DIGEST}`],
    [{ kind: 'time', licensor: LD, firmCode: MAX_CODE, time: 1_800_003_600 }, `license time ${LD} ${MAX_CODE} 1800003600`],
  ])('%j is written and read back exactly', (record, text) => {
    expect(formatLicenseRecordText(record)).toBe(text);
    expect(parseLicenseRecordText(text)).toEqual(record);
  });

  it.each([
    ['another first word', `licence time ${LD} 1 2`],
    ['an unknown kind', `license move ${LD} 1 2`],
    ['an upper-case digest', `license time ${LD.toUpperCase()} 1 2`],
    ['a short licensor digest', `license time ${LD.slice(2)} 1 2`],
    ['a leading zero', `license time ${LD} 01 2`],
    ['a negative number', `license time ${LD} -1 2`],
    ['a firm code past 32 bits', `license time ${LD} ${MAX_CODE + 1} 2`],
    ['units past 2^53', `license use ${LD} 1 2 features 0 units ${MAX_UNITS + 1} left 0 at 1`],
    ['two spaces', `license time ${LD}  1 2`],
    ['a trailing space', `license time ${LD} 1 2 `],
    ['a word too many', `license time ${LD} 1 2 3`],
    ['a missing word', `license update ${LD} 1 counter 1 digest`],
    ['a keyword swapped', `license use ${LD} 1 2 units 0 features 0 left 0 at 1`],
    ['"unlimited" where units belong', `license use ${LD} 1 2 features 0 units unlimited left 0 at 1`],
    ['a short update digest', `license update ${LD} 1 counter 1 digest ${DIGEST.slice(2)}`],
    ['a decimal point', `license time ${LD} 1 2.5`],
  ])('refuses %s', (_name, text) => {
    const error = thrown(() => parseLicenseRecordText(text));
    expect(error).toBeInstanceOf(LicenseError);
    expect((error as LicenseError).reason).toBe('input');
  });

  it('refuses to write fields it could not read back', () => {
    for (const record of [
      { kind: 'time', licensor: LD.toUpperCase(), firmCode: 1, time: 1 },
      { kind: 'time', licensor: LD, firmCode: 1.5, time: 1 },
      { kind: 'update', licensor: LD, firmCode: 1, counter: 1, digest: 'xyz' },
      { kind: 'use', licensor: LD, firmCode: 1, productCode: 1, features: 0, units: -1, left: 0, at: 0 },
    ] as LicenseRecordText[]) {
      expect((thrown(() => formatLicenseRecordText(record)) as LicenseError).reason).toBe('input');
    }
  });

  it('round trips any record (fuzz)', () => {
    const code = fc.integer({ min: 0, max: MAX_CODE });
    const units = fc.integer({ min: 0, max: MAX_UNITS });
    const time = fc.integer({ min: 0, max: 2 ** 40 });
    const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map(toHex);
    const record: fc.Arbitrary<LicenseRecordText> = fc.oneof(
      fc.record({ kind: fc.constant('use' as const), licensor: hex(16), firmCode: code, productCode: code, features: code, units, left: fc.oneof(units, fc.constant('unlimited' as const)), at: time }),
      fc.record({ kind: fc.constant('update' as const), licensor: hex(16), firmCode: code, counter: units, digest: hex(32) }),
      fc.record({ kind: fc.constant('time' as const), licensor: hex(16), firmCode: code, time }),
    );
    fc.assert(fc.property(record, (value) => {
      expect(parseLicenseRecordText(formatLicenseRecordText(value))).toEqual(value);
    }));
  });

  it('any text either parses to a record that writes back as the same text, or is refused with input (fuzz)', () => {
    const words = fc.constantFrom('license', 'use', 'update', 'time', LD, '0', '1', '01', 'features', 'units', 'left', 'at', 'counter', 'digest', 'unlimited', DIGEST, '');
    fc.assert(fc.property(fc.array(words, { maxLength: 14 }).map((list) => list.join(' ')), (text) => {
      const error = thrown(() => parseLicenseRecordText(text));
      if (error === undefined) expect(formatLicenseRecordText(parseLicenseRecordText(text))).toBe(text);
      else expect((error as LicenseError).reason).toBe('input');
    }));
  });
});

describe('container record texts (backup 000 §2.6, lock and unlock 000 §2.10)', () => {
  const ROOT = 'cd'.repeat(32);

  it.each<[ContainerRecordText, string]>([
    [{ kind: 'backup', items: 3, root: ROOT, at: 1_800_000_000 }, `license backup items 3 root ${ROOT} at 1800000000`],
    [{ kind: 'backup', items: 0, root: ROOT, at: 0 }, `license backup items 0 root ${ROOT} at 0`],
    [{ kind: 'backup', items: MAX_FIRM_ITEMS, root: ROOT, at: 2 ** 40 }, `license backup items ${MAX_FIRM_ITEMS} root ${ROOT} at ${2 ** 40}`],
    [{ kind: 'lock', authority: LD, time: 1_800_000_001, digest: DIGEST }, `license lock ${LD} 1800000001 digest ${DIGEST}`],
    [{ kind: 'unlock', authority: LD, time: 1_800_000_002, digest: DIGEST }, `license unlock ${LD} 1800000002 digest ${DIGEST}`],
  ])('%j is written and read back exactly', (record, text) => {
    expect(formatLicenseRecordText(record)).toBe(text);
    expect(parseContainerRecordText(text)).toEqual(record);
  });

  it('the firm item\'s parser refuses them and the container\'s parser refuses the firm item\'s', () => {
    expect((thrown(() => parseLicenseRecordText(`license backup items 3 root ${ROOT} at 1`)) as LicenseError).reason).toBe('input');
    expect((thrown(() => parseLicenseRecordText(`license lock ${LD} 1 digest ${DIGEST}`)) as LicenseError).reason).toBe('input');
    expect((thrown(() => parseContainerRecordText(`license time ${LD} 1 2`)) as LicenseError).reason).toBe('input');
  });

  it.each([
    ['more items than a container holds', `license backup items ${MAX_FIRM_ITEMS + 1} root ${ROOT} at 1`],
    ['a short root', `license backup items 1 root ${ROOT.slice(1)} at 1`],
    ['an upper-case root', `license backup items 1 root ${ROOT.toUpperCase()} at 1`],
    ['"at" missing', `license backup items 1 root ${ROOT} 1`],
    ['keywords swapped', `license backup root 1 items ${ROOT} at 1`],
    ['a leading zero', `license backup items 01 root ${ROOT} at 1`],
    ['a time past 2^40', `license lock ${LD} ${2 ** 40 + 1} digest ${DIGEST}`],
    ['a long authority digest', `license lock ${LD}00 1 digest ${DIGEST}`],
    ['"digest" missing', `license unlock ${LD} 1 ${DIGEST}`],
    ['a word too many', `license unlock ${LD} 1 digest ${DIGEST} x`],
    ['another kind', `license relock ${LD} 1 digest ${DIGEST}`],
  ])('refuses %s', (_name, text) => {
    expect((thrown(() => parseContainerRecordText(text)) as LicenseError).reason).toBe('input');
  });

  it('refuses to write fields it could not read back', () => {
    for (const record of [
      { kind: 'backup', items: -1, root: ROOT, at: 1 },
      { kind: 'backup', items: 1, root: 'xy', at: 1 },
      { kind: 'lock', authority: DIGEST, time: 1, digest: DIGEST },
      { kind: 'unlock', authority: LD, time: 1.5, digest: DIGEST },
    ] as ContainerRecordText[]) {
      expect((thrown(() => formatLicenseRecordText(record)) as LicenseError).reason).toBe('input');
    }
  });

  it('round trips any record, and any text either parses to a record that writes back as the same text or is refused (fuzz)', () => {
    const time = fc.integer({ min: 0, max: 2 ** 40 });
    const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map(toHex);
    const record: fc.Arbitrary<ContainerRecordText> = fc.oneof(
      fc.record({ kind: fc.constant('backup' as const), items: fc.integer({ min: 0, max: MAX_FIRM_ITEMS }), root: hex(32), at: time }),
      fc.record({ kind: fc.constantFrom('lock' as const, 'unlock' as const), authority: hex(16), time, digest: hex(32) }),
    );
    fc.assert(fc.property(record, (value) => {
      expect(parseContainerRecordText(formatLicenseRecordText(value))).toEqual(value);
    }));
    const words = fc.constantFrom('license', 'backup', 'lock', 'unlock', 'items', 'root', 'at', 'digest', LD, DIGEST, '0', '1', '01', '');
    fc.assert(fc.property(fc.array(words, { maxLength: 9 }).map((list) => list.join(' ')), (text) => {
      const error = thrown(() => parseContainerRecordText(text));
      if (error === undefined) expect(formatLicenseRecordText(parseContainerRecordText(text))).toBe(text);
      else expect((error as LicenseError).reason).toBe('input');
    }));
  });
});
