// The validation service of patent 003 [0094] over HTTP: for a keyfile of a vendor it trusts and that names it, and
// the records from the program's start up to c - 1, it answers an attest over the keyfile, card, program, c, the
// records' digest and the usage summary; everything else is a clear 4xx that attests nothing: malformed, oversized
// and mistyped bodies, unknown keyfiles, forged validator records, a validator record whose summary was edited.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed, sha256 } from '../../src/crypto/index.js';
import { encodeRecordLine, recordDigest, type AuditRecord } from '../../src/rental/audit-record.js';
import { createKeyfile, verifyKeyfile } from '../../src/rental/rental-keyfile.js';
import { summariseUsage } from '../../src/rental/thresholds.js';
import { formatUsageText, usageBinding } from '../../src/rental/usage-text.js';
import { buildValidationService, startValidationService, type ValidationEvent } from '../../src/rental/validation-service.js';
import { checkValidatorRecord, claimFor, encodeValidationRequest, parseValidationAnswer, validatorRecordText, verifyValidatorClaim } from '../../src/rental/validator-record.js';
import type { ValidatorKeys } from '../../src/rental/validator-keys.js';
import { closeVendor, initVendor, openVendor, type VendorKeys } from '../../src/rental/vendor.js';
import { writeRecord } from '../../src/rental/write.js';
import { vscRentalCard } from '../support/index.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-validation-service-'));
let vendor: VendorKeys;
let stranger: VendorKeys;
const validatorSigner = ed25519KeyFromSeed(generateEd25519Seed());
const validator: ValidatorKeys = { name: 'Audit Co', signingKey: validatorSigner.publicKey, signer: validatorSigner };
const events: ValidationEvent[] = [];
let app: FastifyInstance;

beforeAll(async () => {
  await initVendor(join(root, 'vendor'), 'Example Software', utf8('pw'));
  await initVendor(join(root, 'stranger'), 'Stranger Software', utf8('pw'));
  vendor = await openVendor(join(root, 'vendor'), utf8('pw'));
  stranger = await openVendor(join(root, 'stranger'), utf8('pw'));
  // The limits of clients are tested on an app of their own: this one serves every request of the other tests.
  app = await buildValidationService({ validator, trustedVendors: [vendor.signingKey], bodyLimit: 256 * 1024, maxRecords: 500, perClientPerMinute: 1_000_000, onValidation: (event) => events.push(event) });
}, 30_000);
afterAll(async () => {
  await app.close();
  closeVendor(vendor);
  closeVendor(stranger);
  rmSync(root, { recursive: true, force: true });
});

async function setup(options: { keys?: VendorKeys; validators?: Uint8Array[]; offset?: bigint } = {}) {
  const card = await vscRentalCard({ counter: options.offset ?? 0n });
  const bytes = createKeyfile(options.keys ?? vendor, {
    program: 'WP', card: { ...card.trustRoot, kind: 'software' }, offset: options.offset ?? 0n, acceptedKinds: ['software'], validatorKeys: options.validators ?? [validator.signingKey],
  }, { decoyBits: 0 });
  const keyfile = verifyKeyfile(bytes, (options.keys ?? vendor).signingKey);
  const binding = usageBinding('WP', card.trustRoot.publicKey);
  const trail: AuditRecord[] = [];
  const write = (text: string) => writeRecord(text, { card: card.rental, trustRoot: card.trustRoot, append: (record) => void trail.push(record) });
  const use = (n: number) => (async () => {
    for (let i = 0; i < n; i++) await write(formatUsageText({ ...binding, kind: 'interval' }));
  })();
  return { card, bytes, keyfile, binding, trail, write, use };
}

const post = (payload: string | object, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  app.inject({ method: 'POST', url: '/v1/validate', headers, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });

describe('POST /v1/validate ([0094])', () => {
  it('attests the records up to c - 1: the answer verifies with the service key, and the validator record it makes starts the program there', async () => {
    const { bytes, keyfile, binding, trail, use, write } = await setup();
    await use(3);
    const response = await post(encodeValidationRequest({ keyfile: bytes, counter: 3n, records: trail }));
    expect(response.statusCode, response.body).toBe(200);
    const answer = parseValidationAnswer(response.json());
    expect(answer.counter).toBe(3n);
    expect(answer.summary).toEqual({ ...summariseUsage(trail, binding, { from: 0n }), next: 3n });
    expect(toHex(answer.recordsDigest)).toBe(toHex(sha256(...trail.map((record) => recordDigest(record, { ...keyfile.card })))));
    expect(toHex(answer.validatorKey)).toBe(toHex(validator.signingKey));
    const claim = claimFor(keyfile, 3n, answer.recordsDigest, answer.summary);
    expect(verifyValidatorClaim(claim, answer.attest, [validator.signingKey])).toBeDefined();
    const record = await write(validatorRecordText(binding, claim, answer.attest));
    expect(record.text).toMatch(/^WP validated 3 usage intervals=3;executions=0;skipped=0 records [0-9a-f]{64} public key [0-9a-f]{32} attest [0-9a-f]{128}$/);
    expect(checkValidatorRecord(record, keyfile)).toMatchObject({ status: 'attested', counter: 3n });
    // The next validation starts at that record: its summary plus the records since.
    await use(2);
    const next = parseValidationAnswer((await post(encodeValidationRequest({ keyfile: bytes, counter: 6n, records: trail.slice(3) }))).json());
    expect(next.summary).toMatchObject({ next: 6n, intervals: 5n });
    expect(events.at(-1)).toMatchObject({ outcome: 'attested', status: 200, program: 'WP', counter: '6', records: 3 });
  });

  it('GET /v1/validator names the service and its key; unknown routes are a JSON 404', async () => {
    const about = await app.inject({ method: 'GET', url: '/v1/validator' });
    expect(about.json()).toEqual({ name: 'Audit Co', validatorKey: toHex(validator.signingKey) });
    const missing = await app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not-found' });
  });

  it('refuses a keyfile of a vendor it does not trust, one that does not name it, and a modified one (403)', async () => {
    const foreign = await setup({ keys: stranger });
    await foreign.use(1);
    const unknown = await post(encodeValidationRequest({ keyfile: foreign.bytes, counter: 1n, records: foreign.trail }));
    expect([unknown.statusCode, unknown.json().error]).toEqual([403, 'unknown-keyfile']);
    expect(unknown.json().message).toMatch(/does not validate for vendor "Stranger Software"/);
    const unnamed = await setup({ validators: [] });
    await unnamed.use(1);
    const notNamed = await post(encodeValidationRequest({ keyfile: unnamed.bytes, counter: 1n, records: unnamed.trail }));
    expect([notNamed.statusCode, notNamed.json().error]).toEqual([403, 'not-named']);
    const { bytes, trail, use } = await setup();
    await use(1);
    const modified = bytes.slice();
    modified[40] = modified[40]! ^ 0x01;
    const response = await post(encodeValidationRequest({ keyfile: modified, counter: 1n, records: trail }));
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    const garbage = await post({ keyfile: 'AAAA', counter: '0', records: [] });
    expect([garbage.statusCode, garbage.json().error]).toEqual([400, 'keyfile-malformed']);
  });

  it('refuses a trail that does not validate (422 with the reason) and records that do not end at c - 1', async () => {
    const { bytes, trail, use } = await setup();
    await use(4);
    const hole = await post(encodeValidationRequest({ keyfile: bytes, counter: 4n, records: [...trail.slice(0, 1), ...trail.slice(2)] }));
    expect([hole.statusCode, hole.json().error]).toEqual([422, 'hole']);
    const modified = trail.map((record, i) => (i === 1 ? { ...record, text: `${record.text} ` } : record));
    expect((await post(encodeValidationRequest({ keyfile: bytes, counter: 4n, records: modified }))).json()).toMatchObject({ error: 'signature' });
    const short = await post(encodeValidationRequest({ keyfile: bytes, counter: 9n, records: trail }));
    expect([short.statusCode, short.json().error]).toEqual([422, 'stale']);
    expect(short.json().message).toMatch(/expected the records from 0 up to 8, got records up to counter 3/);
    const none = await post(encodeValidationRequest({ keyfile: bytes, counter: 4n, records: [] }));
    expect([none.statusCode, none.json().error]).toEqual([422, 'stale']);
    const late = await post(encodeValidationRequest({ keyfile: bytes, counter: 4n, records: trail.slice(1) }));
    expect([late.statusCode, late.json().error]).toEqual([422, 'offset']);
  });

  it('a forged validator record, and one whose summary was edited, start nothing (422)', async () => {
    const { bytes, keyfile, binding, trail, use, write } = await setup();
    await use(2);
    const forger = ed25519KeyFromSeed(generateEd25519Seed());
    const claim = claimFor(keyfile, 2n, sha256(...trail.map((record) => recordDigest(record, { ...keyfile.card }))), { ...summariseUsage(trail, binding, { from: 0n }), next: 2n });
    await write(validatorRecordText(binding, claim, forger.sign(new Uint8Array(1))));
    await use(1);
    const forged = await post(encodeValidationRequest({ keyfile: bytes, counter: 4n, records: trail.slice(2) }));
    expect([forged.statusCode, forged.json().error]).toEqual([422, 'offset']);
    expect(forged.json().message).toMatch(/vouches for nothing/);
    // An honest attest, then the same record written again with a smaller summary.
    const honest = parseValidationAnswer((await post(encodeValidationRequest({ keyfile: bytes, counter: 4n, records: trail }))).json());
    const good = await write(validatorRecordText(binding, claimFor(keyfile, 4n, honest.recordsDigest, honest.summary), honest.attest));
    await write(good.text.replace('validated 4', 'validated 5').replace('intervals=3', 'intervals=1'));
    const edited = await post(encodeValidationRequest({ keyfile: bytes, counter: 6n, records: trail.slice(5) }));
    expect([edited.statusCode, edited.json().error]).toEqual([422, 'offset']);
    // From the honest record on, it validates.
    expect((await post(encodeValidationRequest({ keyfile: bytes, counter: 6n, records: trail.slice(4) }))).statusCode).toBe(200);
  });

  it('malformed, mistyped, extra-field, non-JSON and oversized bodies are 4xx naming the problem', async () => {
    const { bytes, trail, use } = await setup();
    await use(1);
    const valid = JSON.parse(encodeValidationRequest({ keyfile: bytes, counter: 1n, records: trail })) as Record<string, unknown>;
    const record = JSON.parse(encodeRecordLine(trail[0]!)) as Record<string, unknown>;
    const cases: Array<[string, string | object, number, RegExp]> = [
      ['not JSON', '{"keyfile":', 400, /JSON|Unexpected|Body/i],
      ['an array', '[]', 400, /must be object/],
      ['a number counter', { ...valid, counter: 1 }, 400, /counter.*must be string/],
      ['a counter with a sign', { ...valid, counter: '-1' }, 400, /counter.*pattern/],
      ['an extra field', { ...valid, extra: true }, 400, /additional properties/],
      ['a missing field', { keyfile: valid['keyfile'], counter: '1' }, 400, /required property 'records'/],
      ['records not an array', { ...valid, records: {} }, 400, /records.*must be array/],
      ['a record with a short nonce', { ...valid, records: [{ ...record, nonce: '00' }] }, 400, /nonce.*pattern/],
      ['a record with an extra field', { ...valid, records: [{ ...record, more: 1 }] }, 400, /additional properties/],
      ['a record with a number counter', { ...valid, records: [{ ...record, counter: 0 }] }, 400, /counter.*must be string/],
      ['a keyfile that is not base64', { ...valid, keyfile: '****' }, 400, /keyfile.*pattern/],
      ['too many records', { ...valid, records: Array.from({ length: 501 }, () => record) }, 400, /must NOT have more than 500 items/],
      ['a lone surrogate in a text', { ...valid, records: [{ ...record, text: '\ud800' }] }, 400, /valid Unicode/],
    ];
    for (const [what, payload, status, message] of cases) {
      const response = await post(payload);
      expect(response.statusCode, what).toBe(status);
      expect(response.json().message, what).toMatch(message);
    }
    const oversized = await post({ ...valid, records: Array.from({ length: 400 }, () => ({ ...record, text: 'x'.repeat(1000) })) });
    expect([oversized.statusCode, oversized.json().error]).toEqual([413, 'too-large']);
    const text = await post(encodeValidationRequest({ keyfile: bytes, counter: 1n, records: trail }), { 'content-type': 'text/plain' });
    expect([text.statusCode, text.json().error]).toEqual([415, 'unsupported-media-type']);
    expect(events.some((event) => event.status === 413)).toBe(true);
  });

  it('random and mutated bodies get 4xx or a valid attest, never a 5xx (fuzz)', async () => {
    const { bytes, trail, use } = await setup();
    await use(2);
    const valid = encodeValidationRequest({ keyfile: bytes, counter: 2n, records: trail });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 3 }), fc.tuple(fc.nat(valid.length - 1), fc.string({ minLength: 1, maxLength: 3 })).map(([at, s]) => valid.slice(0, at) + s + valid.slice(at + 1))), async (body) => {
        const response = await post(body);
        expect(response.statusCode).toBeLessThan(500);
        if (response.statusCode === 200) expect(() => parseValidationAnswer(response.json())).not.toThrow();
      }),
      { numRuns: 150 },
    );
  });
});

describe('startValidationService', () => {
  it('listens on a real port and answers over HTTP; refuses options without a trusted vendor', async () => {
    const service = await startValidationService({ validator, trustedVendors: [vendor.signingKey], host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(`${service.url}/v1/validator`);
      expect(await response.json()).toMatchObject({ validatorKey: toHex(validator.signingKey) });
    } finally {
      await service.close();
    }
    await expect(buildValidationService({ validator, trustedVendors: [] })).rejects.toThrow(/at least one trusted vendor key/);
    await expect(buildValidationService({ validator, trustedVendors: [fromHex('00')] })).rejects.toThrow(/32 bytes/);
    await expect(buildValidationService({ validator, trustedVendors: [vendor.signingKey], bodyLimit: 1 })).rejects.toThrow(/body limit/);
  });
});

describe('limits: one client cannot starve the others or the machine', () => {
  it('answers 429 with Retry-After past a client\'s validations per minute, before reading the body, and counts only POSTs', async () => {
    const seen: ValidationEvent[] = [];
    const limited = await buildValidationService({ validator, trustedVendors: [vendor.signingKey], perClientPerMinute: 2, onValidation: (event) => seen.push(event) });
    try {
      const { bytes, trail, use } = await setup();
      await use(2);
      const body = encodeValidationRequest({ keyfile: bytes, counter: 2n, records: trail });
      const send = (payload: string) => limited.inject({ method: 'POST', url: '/v1/validate', headers: { 'content-type': 'application/json' }, payload });
      expect((await send(body)).statusCode).toBe(200);
      expect((await send('{"not":"read"}')).statusCode).toBe(400);
      const refused = await send(body);
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(refused.json()).toMatchObject({ error: 'too-many-requests' });
      expect(seen.at(-1)).toMatchObject({ outcome: 'refused', status: 429 });
      expect((await limited.inject({ method: 'GET', url: '/v1/validator' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('answers 503 while the validations at once are all taken, and frees the place when each ends', async () => {
    const limited = await buildValidationService({ validator, trustedVendors: [vendor.signingKey], maxConcurrent: 1, perClientPerMinute: 1_000 });
    try {
      const { bytes, trail, use } = await setup();
      await use(300);
      const body = encodeValidationRequest({ keyfile: bytes, counter: 300n, records: trail });
      const send = () => limited.inject({ method: 'POST', url: '/v1/validate', headers: { 'content-type': 'application/json' }, payload: body });
      const statuses = (await Promise.all([send(), send(), send()])).map((response) => response.statusCode).sort();
      expect(statuses[0]).toBe(200);
      expect(statuses.filter((status) => status === 503).length).toBeGreaterThanOrEqual(1);
      // Every place was given back: one at a time, they all pass.
      for (let i = 0; i < 3; i++) expect((await send()).statusCode).toBe(200);
      await expect(buildValidationService({ validator, trustedVendors: [vendor.signingKey], maxConcurrent: 0 })).rejects.toThrow(/concurrent/);
    } finally {
      await limited.close();
    }
  });
});

