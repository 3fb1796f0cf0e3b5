// The issuing back end's data directory (Wibu 002 back-end issuing; nothing secret in the database in clear): the
// directory is made 0700, its sealing key lives in a 0600 file made once, sealed values open only with that key, for
// their purpose and their row, and a licensor's signing seed is stored sealed, never in clear.
import { mkdtempSync, rmSync, statSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { utf8 } from '../../../src/bytes/index.js';
import { addLicensor, ISSUING_DATABASE_FILE, ISSUING_KEY_FILE, IssuingDataError, issuingSealer, loadIssuingSealer, openIssuingBackend, listLicensors } from '../../../src/license/index.js';
import { ExposedFileError } from '../../../src/files/index.js';

const dirs: string[] = [];
const temp = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-issuing-data-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the data directory', () => {
  it('is made 0700 with a 0600 key file and a 0600 SQLite database, and opens again with the same key', async () => {
    const dir = join(temp(), 'issuing');
    const backend = await openIssuingBackend({ dataDir: dir });
    const made = await addLicensor(backend, { name: 'Example', firmCode: 5 });
    await backend.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, ISSUING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, ISSUING_DATABASE_FILE)).mode & 0o777).toBe(0o600);
    const key = readFileSync(join(dir, ISSUING_KEY_FILE), 'utf8');
    const again = await openIssuingBackend({ dataDir: dir });
    try {
      expect(readFileSync(join(dir, ISSUING_KEY_FILE), 'utf8')).toBe(key);
      expect(await listLicensors(again)).toEqual([{ id: made.licensor.id, name: 'Example', firmCode: 5, publicKey: made.licensor.publicKey }]);
      const row = await again.database.db.selectFrom('issuing_licensors').selectAll().executeTakeFirstOrThrow();
      // The stored seed is sealed: 12-byte nonce, 32 bytes, 16-byte tag; never the seed itself.
      expect(row.sealed_seed.length).toBe(12 + 32 + 16);
      expect(row.api_key_hash.length).toBe(32);
    } finally {
      await again.close();
    }
  });

  it('refuses a key file others can read', () => {
    const dir = temp();
    loadIssuingSealer(dir);
    chmodSync(join(dir, ISSUING_KEY_FILE), 0o644);
    expect(() => loadIssuingSealer(dir)).toThrow(ExposedFileError);
  });
});

describe('the sealer', () => {
  const sealer = issuingSealer(new Uint8Array(32).fill(1));

  it('opens what it sealed, for the same purpose and binding only', () => {
    const sealed = sealer.seal('ticket-code', utf8('row 1'), utf8('SECRET'));
    expect(sealer.open('ticket-code', utf8('row 1'), sealed)).toEqual(utf8('SECRET'));
    expect(() => sealer.open('ticket-code', utf8('row 2'), sealed)).toThrow(IssuingDataError);
    expect(() => sealer.open('licensor-seed', utf8('row 1'), sealed)).toThrow(IssuingDataError);
    expect(() => issuingSealer(new Uint8Array(32).fill(2)).open('ticket-code', utf8('row 1'), sealed)).toThrow(IssuingDataError);
    const tampered = Uint8Array.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => sealer.open('ticket-code', utf8('row 1'), tampered)).toThrow(IssuingDataError);
    expect(() => sealer.open('ticket-code', utf8('row 1'), new Uint8Array(5))).toThrow(IssuingDataError);
    // A fresh nonce each time.
    expect(sealer.seal('ticket-code', utf8('row 1'), utf8('SECRET'))).not.toEqual(sealed);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => issuingSealer(new Uint8Array(31))).toThrow(IssuingDataError);
  });
});

describe('licensors', () => {
  it('are unique by name and firm code, with a checked name and code', async () => {
    const backend = await openIssuingBackend({ dataDir: temp() });
    try {
      await addLicensor(backend, { name: 'Example', firmCode: 5 });
      await expect(addLicensor(backend, { name: 'Example', firmCode: 6 })).rejects.toMatchObject({ status: 409, reason: 'input' });
      await expect(addLicensor(backend, { name: 'Other', firmCode: 5 })).rejects.toMatchObject({ status: 409, reason: 'input' });
      await expect(addLicensor(backend, { name: 'Bad\nName', firmCode: 7 })).rejects.toMatchObject({ reason: 'input' });
      await expect(addLicensor(backend, { name: 'Big', firmCode: 2 ** 32 })).rejects.toMatchObject({ reason: 'input' });
      expect(await listLicensors(backend)).toHaveLength(1);
    } finally {
      await backend.close();
    }
  });
});
