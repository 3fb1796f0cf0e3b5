// The uploads a failed remove keeps (src/vsc-client/pending-upload.ts): written durably and privately,
// read back byte for byte, set aside (never deleted) when the server refuses them for good, and a
// damaged file is refused with a readable error, never half-read.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PendingUploads, deliverPendingUploads, type PendingUpload } from '../../src/vsc-client/index.js';
import { ProtocolError } from '../../src/vsc-protocol/index.js';

const bytes = (fill: number, length = 32): Uint8Array => new Uint8Array(length).fill(fill);
const UPLOAD: PendingUpload = {
  serial: 'CARD-7', url: 'ws://127.0.0.1:7443', serverKey: bytes(1), masterKeyFile: '/etc/vsc/master.key',
  holderSecret: bytes(2), sealed: bytes(3, 500), sealedVersion: 4n, nextCounter: 1234n,
};

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'vsc-pending-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('pending uploads', () => {
  it('keeps an upload in a 0700 directory as a 0600 file and reads it back exactly', () => {
    const pending = new PendingUploads(dir);
    const path = pending.keep(UPLOAD);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(pending.dir).mode & 0o777).toBe(0o700);
    expect(pending.serials()).toEqual(['CARD-7']);
    expect(pending.read('CARD-7')).toEqual(UPLOAD);
    pending.done('CARD-7');
    expect(pending.serials()).toEqual([]);
    expect(pending.read('CARD-7')).toBeUndefined();
  });

  it('a checkpoint names no next counter; a later keep replaces it', () => {
    const pending = new PendingUploads(dir);
    const checkpoint: Record<string, unknown> = { ...UPLOAD };
    delete checkpoint['nextCounter'];
    pending.keep(checkpoint as unknown as PendingUpload);
    expect(pending.read('CARD-7')!.nextCounter).toBeUndefined();
    pending.keep({ ...UPLOAD, sealed: bytes(9, 10) });
    expect(pending.read('CARD-7')).toEqual({ ...UPLOAD, sealed: bytes(9, 10) });
    expect(readdirSync(pending.dir)).toEqual(['CARD-7.upload']); // no temporary file left behind
  });

  it('sets a refused upload aside instead of deleting it, and no longer offers it', () => {
    const pending = new PendingUploads(dir);
    pending.keep(UPLOAD);
    const aside = pending.setAside('CARD-7');
    expect(aside).toBe(join(pending.dir, 'CARD-7.upload.refused'));
    expect(pending.serials()).toEqual([]);
    expect(statSync(aside).size).toBeGreaterThan(500);
  });

  it('a damaged file is set aside at delivery, so it stands in the way of no later insert', async () => {
    const pending = new PendingUploads(dir);
    writeFileSync(pending.keep(UPLOAD), Uint8Array.from([0x50, 9, 9]));
    const [outcome] = await deliverPendingUploads({ dataDir: dir, muk: bytes(7) });
    expect(outcome).toMatchObject({ serial: 'CARD-7', outcome: 'refused', reason: expect.stringMatching(/^the file is damaged: /) });
    expect(pending.serials()).toEqual([]);
    expect(readdirSync(pending.dir)).toEqual(['CARD-7.upload.refused']);
  });

  it('refuses a damaged file with a ProtocolError that names no secret', () => {
    const pending = new PendingUploads(dir);
    const path = pending.keep(UPLOAD);
    writeFileSync(path, Uint8Array.from([0x50, 1, 0, 0, 0, 200]));
    expect(() => pending.read('CARD-7')).toThrow(ProtocolError);
  });
});
