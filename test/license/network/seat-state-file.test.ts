// The network license server's state file (src/license/network/seat-state-file.ts): 0600, atomic, round trip, and a
// table of damaged files that stop the server instead of letting it hand out seats twice.
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExposedFileError } from '../../../src/files/index.js';
import { EMPTY_SEAT_STATE, encodeSeatState, LicenseError, parseSeatState, readSeatState, writeSeatState, type Seat, type SeatState } from '../../../src/license/index.js';

const LEASE: Seat = { id: 'ab'.repeat(12), kind: 'lease', licensor: '12'.repeat(16), firmCode: 7, productCode: 5, client: 'host-a', overflow: true, expiresAt: 1_800_000_070, validUntil: 1_800_100_000 };
const BORROW: Seat = { id: 'cd'.repeat(12), kind: 'borrow', licensor: '12'.repeat(16), firmCode: 7, productCode: 5, client: 'laptop', overflow: false, expiresAt: 1_800_086_400, certificate: '{"format":"vsc-license-borrow/1"}', borrower: 'ef'.repeat(16) };
const STATE: SeatState = { seats: [LEASE, BORROW], standby: { [`${'12'.repeat(16)}/5`]: { seconds: 90, coveredUntil: 1_800_000_070, minutes: 2 } } };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-seats-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('seat state file', () => {
  it('writes 0600 and reads back what it wrote; no file is no seats', () => {
    const path = join(dir, 'seats.json');
    expect(readSeatState(path)).toEqual(EMPTY_SEAT_STATE);
    writeSeatState(path, STATE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readSeatState(path)).toEqual(STATE);
  });

  it('refuses a file others can read', () => {
    const path = join(dir, 'seats.json');
    writeSeatState(path, STATE);
    chmodSync(path, 0o644);
    expect(() => readSeatState(path)).toThrow(ExposedFileError);
  });

  it('refuses a damaged state with a message naming what it expected', () => {
    const good = JSON.parse(encodeSeatState(STATE)) as { seats: Array<Record<string, unknown>>; standby: Record<string, unknown> };
    const seat = (change: Record<string, unknown>) => JSON.stringify({ ...good, seats: [{ ...good.seats[0], ...change }] });
    const cases: Array<[string, string]> = [
      ['not JSON', '{'],
      ['another format', JSON.stringify({ ...good, format: 'vsc-license-seats/2' })],
      ['an extra field', JSON.stringify({ ...good, more: 1 })],
      ['seats not a list', JSON.stringify({ ...good, seats: {} })],
      ['a short id', seat({ id: 'ab' })],
      ['an unknown kind', seat({ kind: 'gift' })],
      ['a negative time', seat({ expiresAt: -1 })],
      ['a fractional code', seat({ productCode: 1.5 })],
      ['an empty client', seat({ client: '' })],
      ['an unknown seat field', seat({ admin: true })],
      ['a lease with a certificate', seat({ certificate: 'x', borrower: 'ef'.repeat(16) })],
      ['a borrow without its certificate', JSON.stringify({ ...good, seats: [{ ...good.seats[1], certificate: undefined }] })],
      ['one id twice', JSON.stringify({ ...good, seats: [good.seats[0], good.seats[0]] })],
      ['a standby item not LD/PRODUCT', JSON.stringify({ ...good, standby: { x: { seconds: 1, coveredUntil: 1, minutes: 1 } } })],
      ['standby seconds as text', JSON.stringify({ ...good, standby: { [`${'12'.repeat(16)}/5`]: { seconds: '1', coveredUntil: 1, minutes: 1 } } })],
    ];
    for (const [name, text] of cases) {
      const path = join(dir, `${name.replace(/\W/g, '-')}.json`);
      writeFileSync(path, text, { mode: 0o600 });
      expect(() => readSeatState(path), name).toThrow(LicenseError);
    }
    expect(() => parseSeatState(encodeSeatState(STATE))).not.toThrow();
    const text = encodeSeatState(STATE);
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.nat(text.length - 2).map((cut) => text.slice(0, cut))), (input) => {
      expect(() => parseSeatState(input)).toThrow(LicenseError);
    }));
  });
});
