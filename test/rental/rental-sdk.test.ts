// The SDK of rented programs (patent 003 [0063], claim 6) against the real rental server in-process (the VSC applet
// on a software card, the trail fsynced in a temporary directory, the local socket): open, check, charge, rights,
// thresholds ([0049]), limited mode on every failure, never a crash; and the example rented program on it.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { rentedWordCount as wordCount, RENTED_WORD_COUNT_PROGRAM as PROGRAM_NAME } from '../../src/demo/index.js';
import { UsageError } from '../../src/errors/index.js';
import { closeVendor, createKeyfile, initVendor, openVendor, Rental, type KeyfileInput, type VendorKeys } from '../../src/rental/index.js';
import { inProcessRentalCard, rentalTempDir, startRentalServer, type InProcessRentalCard, type RunningRentalServer } from '../support/rental-server-fixture.js';

const root = rentalTempDir('vsc-rental-sdk-');
let vendor: VendorKeys;
let other: VendorKeys;
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('pw'));
  await initVendor(join(root, 'other'), 'Other Software', utf8('pw'));
  vendor = await openVendor(join(root, 'vendor'), utf8('pw'));
  other = await openVendor(join(root, 'other'), utf8('pw'));
});
afterAll(() => {
  closeVendor(vendor);
  closeVendor(other);
  rmSync(root, { recursive: true, force: true });
});

let dirs = 0;

/** A card, a rental server on it, and a keyfile for `program` on that card. */
async function rented(options: { program?: string; thresholds?: string[]; rights?: string[]; counter?: bigint } = {}) {
  const card = await inProcessRentalCard({ counter: options.counter ?? 0n });
  const directory = join(root, `trail-${dirs++}`);
  const server = await startRentalServer({ access: card.access, directory });
  const keyfile = keyfileFor(card, options.program ?? 'WP', options);
  return { card, server, keyfile, directory, trail: join(directory, 'trail.jsonl') };
}

function keyfileFor(card: InProcessRentalCard, program: string, options: { thresholds?: string[]; rights?: string[]; counter?: bigint } = {}, keys = vendor): Uint8Array {
  const input: KeyfileInput = {
    program, card: { serial: card.trustRoot.serial, publicKey: card.trustRoot.publicKey, keyMode: card.trustRoot.keyMode, kind: 'software' },
    offset: options.counter ?? 0n, acceptedKinds: ['software'], rights: options.rights ?? [], thresholds: options.thresholds ?? [],
  };
  return createKeyfile(keys, input, { decoyBits: 0 });
}

const servers: RunningRentalServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.stop().catch(() => undefined);
});

async function open(setup: Awaited<ReturnType<typeof rented>>, overrides: Partial<Parameters<typeof Rental.open>[0]> = {}) {
  servers.push(setup.server);
  return Rental.open({ keyfile: setup.keyfile, vendorKey: vendor.signingKey, socket: setup.server.socketPath, ...overrides });
}

describe('Rental.open, check and charge', () => {
  it('opens unchecked (limited) and writes nothing; check() validates through the server and allows', async () => {
    const setup = await rented({ rights: ['print'] });
    const rental = await open(setup);
    expect(rental.limited).toBe(true);
    expect(rental.decision).toMatchObject({ allowed: false, denial: 'unchecked' });
    expect(rental.allows('print')).toBe(false);
    expect(await setup.card.card.counter()).toBe(0n);
    const decision = await rental.check();
    expect(decision).toMatchObject({ allowed: true });
    expect(rental.allows('print')).toBe(true);
    expect(rental.allows('export')).toBe(false);
    // [0060] step [2]: validation wrote its own record, "WP validated 0 public key ...".
    expect(readFileSync(setup.trail, 'utf8')).toContain('"text":"WP validated 0 public key ');
    await rental.close();
    expect(rental.decision).toMatchObject({ allowed: false, denial: 'closed' });
    expect(await rental.check()).toMatchObject({ allowed: false, denial: 'closed' });
  });

  it('[0049]: charges while under the threshold, and refuses the use that would go over it', async () => {
    const setup = await rented({ thresholds: ['executions<=3'] });
    const rental = await open(setup);
    for (let run = 1; run <= 3; run++) {
      const decision = await rental.charge('execution');
      expect(decision.allowed, decision.reason).toBe(true);
      if (decision.allowed) expect(decision.usage.executions).toBe(BigInt(run));
    }
    const refused = await rental.charge('execution');
    expect(refused).toMatchObject({ allowed: false, denial: 'threshold', code: 'rental.threshold' });
    expect(refused.reason).toMatch(/refused by executions<=3/);
    // Refused: no fourth execution record was written.
    expect(readFileSync(setup.trail, 'utf8').match(/WP execution public key/g)).toHaveLength(3);
    await rental.close();
  });

  it('counts only its own program\'s records: another program\'s use on the same card does not charge it', async () => {
    const setup = await rented({ thresholds: ['executions<=2'] });
    const wp = await open(setup);
    const ss = await Rental.open({ keyfile: keyfileFor(setup.card, 'SS', { thresholds: ['executions<=2'] }), vendorKey: vendor.signingKey, socket: setup.server.socketPath });
    expect((await ss.charge('execution')).allowed).toBe(true);
    expect((await ss.charge('execution')).allowed).toBe(true);
    expect(await ss.charge('execution')).toMatchObject({ allowed: false, denial: 'threshold' });
    expect((await wp.charge('execution')).allowed).toBe(true);
    await wp.close();
    await ss.close();
  });

  it('units and intervals ([0103]): a use of minutes at a local time is recorded, a bad use is the caller\'s mistake', async () => {
    const setup = await rented({ thresholds: ['units<=1000 at 20:00-06:00 1/h else 2/h'] });
    const rental = await open(setup);
    const decision = await rental.charge({ minutes: 60, at: new Date('2026-11-28T21:00:00Z') });
    expect(decision.allowed, decision.reason).toBe(true);
    expect((await rental.charge('interval')).allowed).toBe(true);
    await expect(rental.charge({ minutes: 61 })).rejects.toBeInstanceOf(UsageError);
    await expect(rental.charge('hours' as never)).rejects.toBeInstanceOf(UsageError);
    await rental.close();
  });
});

describe('limited mode on every failure (claim 6), never a crash', () => {
  it('a modified keyfile, another vendor\'s keyfile, or one for another program', async () => {
    const setup = await rented();
    const modified = setup.keyfile.slice();
    modified[modified.length - 1]! ^= 0x01;
    expect((await open(setup, { keyfile: modified })).decision).toMatchObject({ allowed: false, denial: 'keyfile', code: 'keyfile.signature' });
    const foreign = keyfileFor(setup.card, 'WP', {}, other);
    const refused = await open(setup, { keyfile: foreign });
    expect(refused.decision).toMatchObject({ allowed: false, denial: 'keyfile', code: 'keyfile.foreign' });
    expect(await refused.charge('execution')).toMatchObject({ allowed: false, denial: 'keyfile' });
    expect((await open(setup, { program: 'SS' })).decision).toMatchObject({ allowed: false, denial: 'keyfile', code: 'keyfile.program' });
    expect((await open(setup, { keyfile: join(root, 'no-such.keyfile') })).decision).toMatchObject({ allowed: false, denial: 'keyfile' });
    expect(await setup.card.card.counter()).toBe(0n);
  });

  it('no rental server: denied with the reason, and allowed again once one runs', async () => {
    const setup = await rented();
    await setup.server.stop();
    const rental = await Rental.open({ keyfile: setup.keyfile, vendorKey: vendor.signingKey, socket: setup.server.socketPath });
    const denied = await rental.check();
    expect(denied).toMatchObject({ allowed: false, denial: 'server' });
    expect(denied.reason).toMatch(/no rental server answers/);
    const again = await startRentalServer({ access: setup.card.access, directory: setup.directory, socketPath: setup.server.socketPath });
    servers.push(again);
    expect((await rental.check()).allowed).toBe(true);
    // The server restarts under the program: the next check reconnects.
    await again.stop();
    const third = await startRentalServer({ access: setup.card.access, directory: setup.directory, socketPath: setup.server.socketPath });
    servers.push(third);
    expect((await rental.charge('interval')).allowed).toBe(true);
    await rental.close();
  });

  it('a rental server with another card than the keyfile\'s: wrong-card', async () => {
    const setup = await rented();
    const elsewhere = await rented();
    servers.push(elsewhere.server);
    const rental = await open(setup, { socket: elsewhere.server.socketPath });
    expect(await rental.check()).toMatchObject({ allowed: false, denial: 'wrong-card' });
    await rental.close();
  });

  it('a trail with a deleted record: denied naming the hole; a trail restored from an old copy: stale', async () => {
    const setup = await rented();
    const rental = await open(setup);
    for (let i = 0; i < 4; i++) expect((await rental.charge('execution')).allowed).toBe(true);
    const lines = readFileSync(setup.trail, 'utf8').split('\n');
    const backup = lines.join('\n');
    writeFileSync(setup.trail, [...lines.slice(0, 2), ...lines.slice(3)].join('\n'));
    expect(await rental.check()).toMatchObject({ allowed: false, denial: 'trail', code: 'rental.hole' });
    writeFileSync(setup.trail, backup);
    await setup.server.stop();
    const restarted = await startRentalServer({ access: setup.card.access, directory: setup.directory, socketPath: setup.server.socketPath });
    servers.push(restarted);
    expect(await rental.check()).toMatchObject({ allowed: false, denial: 'trail', code: 'rental.stale' });
    await rental.close();
  });

  it('startMeter charges an interval at once and then on every tick, until close()', async () => {
    const setup = await rented({ thresholds: ['intervals<=2'] });
    const rental = await open(setup);
    const decisions: boolean[] = [];
    rental.startMeter((decision) => decisions.push(decision.allowed), 50);
    await vi.waitFor(() => expect(decisions.length).toBeGreaterThanOrEqual(3), { timeout: 5_000 });
    await rental.close();
    expect(decisions.slice(0, 3)).toEqual([true, true, false]);
    expect(readFileSync(setup.trail, 'utf8').match(/WP 15 minutes public key/g)).toHaveLength(2);
  });

  it('bad options are the programmer\'s mistake: thrown', async () => {
    await expect(Rental.open(undefined as never)).rejects.toBeInstanceOf(UsageError);
    await expect(Rental.open({ keyfile: new Uint8Array(0), vendorKey: 'ab' })).rejects.toBeInstanceOf(UsageError);
  });
});

describe('the example rented program (src/demo/rented-word-count.ts)', () => {
  it('runs in full while the keyfile allows, then in the vendor\'s limited mode, saying why', async () => {
    const setup = await rented({ program: PROGRAM_NAME, thresholds: ['executions<=1'], rights: ['per-file'] });
    servers.push(setup.server);
    const keyfile = join(root, `wc-${dirs++}.keyfile`);
    const input = join(root, `words-${dirs++}.txt`);
    writeFileSync(keyfile, setup.keyfile);
    writeFileSync(input, 'one two three\nfour five\n');
    const env = { WC_RENTED_VENDOR_KEY: hex(vendor.signingKey) };
    const output: string[] = [];
    const errors: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void output.push(line));
    const error = vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    try {
      expect(await wordCount(['--keyfile', keyfile, '--socket', setup.server.socketPath, '--json', input], env)).toBe(0);
      expect(JSON.parse(output[0]!)).toMatchObject({ mode: 'full', total: { lines: 2, words: 5, bytes: 24 }, files: [{ file: input, words: 5 }] });
      expect(await wordCount(['--keyfile', keyfile, '--socket', setup.server.socketPath, '--json', input], env)).toBe(0);
      expect(JSON.parse(output[1]!)).toMatchObject({ mode: 'limited', total: { lines: 2 } });
      expect(JSON.parse(output[1]!).reason).toMatch(/executions<=1/);
      expect(await wordCount(['--keyfile', keyfile, '--socket', join(root, 'nowhere.sock'), input], env)).toBe(0);
      expect(errors.join('\n')).toMatch(/limited mode \(server\)/);
      expect(await wordCount(['--keyfile', keyfile], env)).toBe(2);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});
