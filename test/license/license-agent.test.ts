// The license agent on the rental server's socket and the program-side SDK over it (src/license/license-agent.ts,
// license-agent-link.ts, license-sdk.ts, license-usage-report.ts; DESIGN.md "License containers"): the real VSC and
// license applets on a software card in the in-process card OS, a real RentalServer with its trail on disk, a real
// Unix socket. Every use is a card-signed record in the trail; the usage is reproduced from it; a lying agent is caught.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CardOs, SoftwareVscCard, VscApplet } from '../../src/apdu/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { AgentLicenseLink, License, licenseExtensions, licenseUsageReport, parseLicenseRecordText, signCardBinding, type LicenseCardLink, LicenseApplet, MemoryLicenseStore } from '../../src/license/index.js';
import { establishContext, ReaderSystem, SCARD_PROTOCOL_T1, SCARD_SHARE_SHARED } from '../../src/reader-driver/index.js';
import { claimRentalSocket, handleCardAccess, RentalClient, RentalError, RentalListener, RentalServer, TrailFile, verifyRecord, type TrustRoot } from '../../src/rental/index.js';
import { CARD_SERIAL, firstUpdate, LICENSOR, OTHER_LICENSOR, simpleProduct, T0, updateFile } from '../support/index.js';

let dir: string;
let socket: string;
let listener: RentalListener;
let root: TrustRoot;
let readers = 0;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-license-agent-'));
  const card = new SoftwareVscCard({ serial: CARD_SERIAL, keyMode: 'individual', key: ed25519KeyFromSeed(generateEd25519Seed()), counter: 0n });
  root = { publicKey: card.publicKey, serial: CARD_SERIAL, keyMode: 'individual' };
  const system = new ReaderSystem();
  const name = `License Agent Reader ${readers++}`;
  system.addReader(name).insert(new CardOs([new VscApplet(card), new LicenseApplet(card, { store: new MemoryLicenseStore() })]));
  const handle = await establishContext(system).connect(name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1);
  const server = await RentalServer.open({ card: handleCardAccess(handle), directory: join(dir, 'trail') });
  socket = join(dir, 'rental.sock');
  await claimRentalSocket(socket);
  listener = await RentalListener.listen(socket, server, licenseExtensions(server, join(dir, 'trail')));
});

afterEach(async () => {
  await listener.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Activates product 7 with `units` on the card and stores the licensor's binding, as `vsc license activate` does. */
async function activate(units: number): Promise<void> {
  const link = await AgentLicenseLink.connect(socket);
  try {
    const receipt = await link.apply(updateFile(firstUpdate([{ op: 'put-product', product: simpleProduct(7, units) }])));
    expect(verifyRecord(receipt, root)).toBe(true);
    expect(parseLicenseRecordText(receipt.text)).toMatchObject({ kind: 'update', firmCode: 10101, counter: 1 });
    await link.bind(signCardBinding(LICENSOR, { serial: CARD_SERIAL, cardPublicKey: root.publicKey, keyMode: 'individual' }));
  } finally {
    await link.close();
  }
}

const trail = () => join(dir, 'trail', 'trail.jsonl');
async function trailTexts(): Promise<string[]> {
  const texts: string[] = [];
  for await (const record of new TrailFile(trail()).records()) texts.push(record.text);
  return texts;
}

describe('the license agent and the SDK', () => {
  it('counts a pay-per-use product down use by use, refuses the exhausted one, and the trail reproduces the usage', async () => {
    await activate(3);
    const license = await License.open({ licensorKey: LICENSOR.publicKey, productCode: 7, socket, clock: () => T0 + 60 });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await license.use(0b1, 1));
    await license.close();
    expect(decisions.map((d) => (d.allowed ? d.remaining : d.reason))).toEqual([2, 1, 0, 'exhausted']);
    // The refused use signed nothing: the trail holds the update's receipt and three uses.
    const texts = await trailTexts();
    expect(texts).toHaveLength(4);
    expect(texts.slice(1).every((text) => text.startsWith('license use '))).toBe(true);
    const report = await licenseUsageReport(trail(), root, LICENSOR.publicKey);
    expect(report).toMatchObject({ updates: 1, missing: [], products: [{ productCode: 7, uses: 3, units: 3, lastLeft: 0 }] });
    expect((await licenseUsageReport(trail(), root, OTHER_LICENSOR.publicKey)).products).toEqual([]);
  });

  it('detects a clock set back a day and does not count the use', async () => {
    await activate(10);
    const now = { t: T0 + 86_400 };
    const license = await License.open({ licensorKey: LICENSOR.publicKey, productCode: 7, socket, clock: () => now.t });
    expect(await license.use(0, 1)).toMatchObject({ allowed: true, remaining: 9 });
    now.t -= 86_400;
    const refused = await license.use(0, 1);
    expect(refused).toMatchObject({ allowed: false, reason: 'clock-set-back' });
    now.t += 86_400 + 10;
    expect(await license.use(0, 1)).toMatchObject({ allowed: true, remaining: 8 });
    await license.close();
  });

  it('a counted check (0 units) leaves a signed record and changes no counter; an unlicensed feature is refused', async () => {
    await activate(5);
    const license = await License.open({ licensorKey: LICENSOR.publicKey, productCode: 7, socket, clock: () => T0 });
    expect(await license.check()).toMatchObject({ allowed: true, remaining: 5 });
    expect(await license.use(0b100, 1)).toMatchObject({ allowed: false, reason: 'feature' });
    expect((await license.item())?.unitsUsed).toBe(0);
    await license.close();
  });

  it('without the licensor\'s binding, or for another product, every decision is a denial with its reason', async () => {
    await activate(5);
    const other = await License.open({ licensorKey: OTHER_LICENSOR.publicKey, productCode: 7, socket });
    expect(await other.use()).toMatchObject({ allowed: false, reason: 'no-license' });
    await other.close();
    const unknown = await License.open({ licensorKey: LICENSOR.publicKey, productCode: 8, socket, clock: () => T0 });
    expect(await unknown.use()).toMatchObject({ allowed: false, reason: 'no-license' });
    await unknown.close();
    const absent = await License.open({ licensorKey: LICENSOR.publicKey, productCode: 7, socket: join(dir, 'nobody.sock') });
    expect(await absent.use()).toMatchObject({ allowed: false, reason: 'card' });
  });

  it('catches an agent that answers with another card\'s record or another use\'s record', async () => {
    await activate(5);
    const honest = await AgentLicenseLink.connect(socket);
    const forger = ed25519KeyFromSeed(generateEd25519Seed());
    const lying = (change: 'key' | 'units'): LicenseCardLink => ({
      card: honest.card, readContainer: () => honest.readContainer(), apply: (file) => honest.apply(file), bindings: () => honest.bindings(), close: async () => undefined,
      async use(request) {
        const record = await honest.use({ ...request, units: change === 'units' ? 0 : request.units });
        return change === 'key' ? { ...record, signature: forger.sign(record.signature) } : record;
      },
    });
    for (const change of ['key', 'units'] as const) {
      const license = await License.open({ licensorKey: LICENSOR.publicKey, productCode: 7, link: lying(change), clock: () => T0 });
      expect(await license.use(0, 1)).toMatchObject({ allowed: false, reason: 'signature' });
    }
    await honest.close();
  });

  it('refuses a binding for another card and malformed requests, changing nothing', async () => {
    await activate(5);
    const link = await AgentLicenseLink.connect(socket);
    const stranger = ed25519KeyFromSeed(generateEd25519Seed()).publicKey;
    await expect(link.bind(signCardBinding(OTHER_LICENSOR, { serial: CARD_SERIAL, cardPublicKey: stranger, keyMode: 'individual' }))).rejects.toMatchObject({ reason: 'foreign' });
    expect(await link.bindings()).toHaveLength(1);
    await link.close();
    const client = await RentalClient.connect(socket);
    const before = readFileSync(trail(), 'utf8');
    for (const fields of [{}, { request: { productCode: 7 } }, { request: 'x' }, { request: { licensorKey: 'zz', productCode: 7, features: 0, units: 1, hostTime: 0 } }, { request: {}, extra: 1 }]) {
      await expect(client.extension('license.use', fields)).rejects.toBeInstanceOf(RentalError);
    }
    await expect(client.extension('license.apply', { update: '{"format":"other"}' })).resolves.toMatchObject({ refused: { reason: 'input' } });
    client.close();
    expect(readFileSync(trail(), 'utf8')).toBe(before);
  });
});
