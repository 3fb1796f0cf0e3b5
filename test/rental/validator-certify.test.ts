// The customer's side of patent 003 [0094]: certifyTrail sends the records from the program's start up to the card's
// counter c - 1 to the validation service over HTTP, checks its answer against the keyfile's validator keys and the
// records sent, and writes the validator record at exactly c; when another program signs first, it asks again. An
// in-process card and a real trail file; the service listens on a real port.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { RentalError } from '../../src/rental/rental-error.js';
import { createKeyfile, verifyKeyfile } from '../../src/rental/rental-keyfile.js';
import { TrailFile } from '../../src/rental/trail-file.js';
import { formatUsageText, usageBinding } from '../../src/rental/usage-text.js';
import { validateTrail } from '../../src/rental/validate-trail.js';
import { startValidationService, type RunningValidationService } from '../../src/rental/validation-service.js';
import { certifyClientOf, certifyTrail, findValidationStart, type CertifyClient } from '../../src/rental/validation-start.js';
import { RentalClient, Rental } from '../../src/rental/index.js';
import { inProcessRentalCard, startRentalServer } from '../support/rental-server-fixture.js';
import { checkValidatorRecord, ValidationServiceError } from '../../src/rental/validator-record.js';
import type { ValidatorKeys } from '../../src/rental/validator-keys.js';
import { closeVendor, initVendor, openVendor, type VendorKeys } from '../../src/rental/vendor.js';
import { writeRecord } from '../../src/rental/write.js';
import { vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-certify-'));
let vendor: VendorKeys;
const signer = ed25519KeyFromSeed(generateEd25519Seed());
const validator: ValidatorKeys = { name: 'Audit Co', signingKey: signer.publicKey, signer };
let service: RunningValidationService;
let dirs = 0;

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('pw'));
  vendor = await openVendor(join(root, 'vendor'), utf8('pw'));
  service = await startValidationService({ validator, trustedVendors: [vendor.signingKey], host: '127.0.0.1', port: 0 });
}, 30_000);
afterAll(async () => {
  await service.close();
  closeVendor(vendor);
  rmSync(root, { recursive: true, force: true });
});

async function setup(validatorKeys = [validator.signingKey]) {
  const card = await vscRentalCard();
  const keyfile = verifyKeyfile(createKeyfile(vendor, {
    program: 'WP', card: { ...card.trustRoot, kind: 'software' }, offset: 0n, acceptedKinds: ['software'], validatorKeys,
  }, { decoyBits: 0 }), vendor.signingKey);
  const binding = usageBinding('WP', card.trustRoot.publicKey);
  const trail = TrailFile.inDirectory(join(root, `trail-${dirs++}`));
  const write = (text: string) => writeRecord(text, { card: card.rental, trustRoot: card.trustRoot, append: (record) => trail.append(record) });
  const use = async (n: number) => {
    for (let i = 0; i < n; i++) await write(formatUsageText({ ...binding, kind: 'interval' }));
  };
  /** The rental server's promise: sign at exactly the counter asked, or `counter-moved` and nothing signed. */
  const client: CertifyClient = {
    counter: () => card.rental.getCounter(),
    async write(text, expectCounter) {
      const now = await card.rental.getCounter();
      if (now !== expectCounter) throw new RentalError('counter-moved', `the card is at counter ${now}, not ${expectCounter}`);
      return write(text);
    },
  };
  return { card, keyfile, binding, trail, write, use, client };
}

describe('certifyTrail ([0094])', () => {
  it('writes the attested validator record at exactly c; it becomes the program\'s start, and ValidateTrail passes from it', async () => {
    const { card, keyfile, trail, use, client } = await setup();
    await use(3);
    const first = await certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: service.url });
    expect(first).toMatchObject({ from: 0n, records: 3, summary: { next: 3n, intervals: 3n }, record: { counter: 3n } });
    expect(toHex(first.validatorKey)).toBe(toHex(validator.signingKey));
    expect(checkValidatorRecord(first.record, keyfile)).toMatchObject({ status: 'attested', counter: 3n });
    await use(2);
    const second = await certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: `${service.url}/` });
    expect(second).toMatchObject({ from: 3n, records: 3, summary: { next: 6n, intervals: 5n }, record: { counter: 6n } });
    const start = await findValidationStart(keyfile, trail.path);
    expect(start.offset).toBe(6n);
    await expect(validateTrail({ card: card.rental, trustRoot: card.trustRoot, offset: start.offset, trail: { append: (r) => trail.append(r), recordBatches: () => start.records() } })).resolves.toMatchObject({ records: 2 });
  });

  it('asks again when another program signs between the counter and the write (counter-moved)', async () => {
    const { keyfile, trail, use, client, write } = await setup();
    await use(2);
    let interfered = 0;
    const racing: CertifyClient = {
      counter: client.counter,
      async write(text, expectCounter) {
        if (interfered < 2) {
          interfered += 1;
          await write('SS execution public key 768230aac8239d9df88cfe3c7b832a00');
        }
        return client.write(text, expectCounter);
      },
    };
    const certified = await certifyTrail({ keyfile, trailPath: trail.path, client: racing, validatorUrl: service.url });
    expect(certified.record.counter).toBe(4n);
    expect(certified.records).toBe(4);
    const never: CertifyClient = { counter: client.counter, write: () => Promise.reject(new RentalError('counter-moved', 'moved')) };
    await expect(certifyTrail({ keyfile, trailPath: trail.path, client: never, validatorUrl: service.url, attempts: 2 })).rejects.toMatchObject({ reason: 'counter-moved' });
  });

  it('the service\'s refusal comes back with its reason; nothing is written', async () => {
    const { keyfile, trail, use, client, card } = await setup();
    await use(2);
    // A record the trail lost, just before the last: checked without the card, that is a hole (not a stale trail).
    await writeRecord('lost', { card: card.rental, trustRoot: card.trustRoot, append: () => undefined });
    await use(1);
    const size = trail.readAll().length;
    const error = await certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: service.url }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationServiceError);
    expect(error).toMatchObject({ code: 'validation-service.hole', exitCode: 3, message: expect.stringMatching(/refused \(HTTP 422\)/) });
    expect(trail.readAll().length).toBe(size);
    const unnamed = await setup([]);
    await unnamed.use(1);
    await expect(certifyTrail({ keyfile: unnamed.keyfile, trailPath: unnamed.trail.path, client: unnamed.client, validatorUrl: service.url })).rejects.toMatchObject({ code: 'validation-service.not-named' });
  });

  it('does not believe a service that answers for other records or with an attest the keyfile\'s keys do not verify', async () => {
    const { keyfile, trail, use, client } = await setup();
    await use(1);
    let answer: Record<string, string> = {};
    const liar: Server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(answer));
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(liar.address() as { port: number }).port}`;
    try {
      const honest = await fetch(`${service.url}/v1/validate`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ keyfile: Buffer.from(keyfile.bytes).toString('base64'), counter: '1', records: trail.readAll().map((r) => ({ nonce: toHex(r.nonce), text: r.text, counter: r.counter.toString(16).padStart(32, '0'), signature: toHex(r.signature) })) }),
      });
      const good = (await honest.json()) as Record<string, string>;
      answer = { ...good, summary: good['summary']!.replace('intervals=1', 'intervals=0') };
      await expect(certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: url })).rejects.toMatchObject({ code: 'validation-service.untrusted' });
      answer = { ...good, recordsDigest: '00'.repeat(32) };
      await expect(certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: url })).rejects.toMatchObject({ code: 'validation-service.answer' });
      answer = { ...good, attest: 'zz' };
      await expect(certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: url })).rejects.toMatchObject({ code: 'validation-service.answer' });
      expect(trail.readAll().length).toBe(1);
    } finally {
      await new Promise((resolve) => liar.close(resolve));
    }
    await expect(certifyTrail({ keyfile, trailPath: trail.path, client, validatorUrl: url, timeoutMs: 2000 })).rejects.toMatchObject({ code: 'validation-service.unreachable' });
  });
});

describe('through the rental server and the SDK ([0058], [0094])', () => {
  it('certifies through the rental server\'s client; a program whose start is findValidationStart counts on from the attested summary', async () => {
    const card = await inProcessRentalCard();
    const server = await startRentalServer({ access: card.access, directory: join(root, 'server-trail') });
    const bytes = createKeyfile(vendor, {
      program: 'WP', card: { ...card.trustRoot, kind: 'software' }, offset: 0n, acceptedKinds: ['software'], thresholds: ['intervals<=4'], validatorKeys: [validator.signingKey],
    }, { decoyBits: 0 });
    const keyfile = verifyKeyfile(bytes, vendor.signingKey);
    const rental = await Rental.open({ keyfile: bytes, vendorKey: vendor.signingKey, socket: server.socketPath, start: (k, _binding, trail) => findValidationStart(k, trail) });
    const link = await RentalClient.connect(server.socketPath);
    try {
      for (let i = 0; i < 3; i++) expect((await rental.charge('interval')).allowed).toBe(true);
      const { trail } = await link.hello();
      const certified = await certifyTrail({ keyfile, trailPath: trail, client: certifyClientOf(link, card.trustRoot), validatorUrl: service.url });
      expect(certified.summary.intervals).toBe(3n);
      expect((await findValidationStart(keyfile, trail)).offset).toBe(certified.record.counter);
      const decision = await rental.charge('interval');
      expect(decision).toMatchObject({ allowed: true, usage: { intervals: 4n } });
      const refused = await rental.check();
      expect(refused).toMatchObject({ allowed: false, denial: 'threshold', reason: expect.stringMatching(/intervals 4 of 4 used/) });
    } finally {
      link.close();
      await rental.close();
      await server.stop();
    }
  });
});
