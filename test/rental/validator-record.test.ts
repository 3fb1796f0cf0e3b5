// The validator record (patent 003 [0094]: "a digital signature of the hash of all preceding audit records ... [that]
// uses the private key of the audit validation service"): the signed message's layout, the record text grammar with
// its summary, records digest and attest, the checks a program makes of it, and the service's answer parsed strictly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, uintToBytes, utf8 } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, sha256 } from '../../src/crypto/index.js';
import type { Keyfile } from '../../src/rental/rental-keyfile.js';
import { formatUsageText, parseUsageText, summariseUsage, usageBinding, type UsageSummary } from '../../src/rental/index.js';
import {
  checkValidatorRecord, claimFor, parseValidationAnswer, RecordsDigest, signValidatorClaim, ValidationServiceError, validatorMessage, validatorRecordText, verifyValidatorClaim,
} from '../../src/rental/validator-record.js';
import { recordDigest } from '../../src/rental/audit-record.js';

const cardKey = ed25519KeyFromSeed(fromHex('11'.repeat(32)));
const service = ed25519KeyFromSeed(fromHex('22'.repeat(32)));
const binding = usageBinding('WP', cardKey.publicKey);
/** The fields checkValidatorRecord reads of a keyfile. */
const keyfile = {
  id: fromHex('0f'.repeat(16)), program: 'WP', offset: 0n, validatorKeys: [service.publicKey],
  card: { serial: 'CARD-1', publicKey: cardKey.publicKey, keyMode: 'individual', kind: 'token' },
} as unknown as Keyfile;
const summary: UsageSummary = { next: 42n, intervals: 7n, executions: 1n, skipped: 2n, minutesByHour: Array.from({ length: 24 }, (_, h) => (h === 21 ? 30n : 0n)), lastAudit: undefined };
const digest = sha256(utf8('records'));

describe('the signed message ([0094])', () => {
  it('is the domain, then each field length-prefixed: keyfile id, serial, key digest, program, counter, records digest, summary', () => {
    const claim = claimFor(keyfile, 42n, digest, summary);
    const lp = (bytes: Uint8Array) => concatBytes(uintToBytes(BigInt(bytes.length), 4), bytes);
    const expected = concatBytes(
      utf8('vsc validator record v1\0'), lp(keyfile.id), lp(utf8('CARD-1')), lp(fromHex(binding.keyDigest)), lp(utf8('WP')),
      lp(uintToBytes(42n, 16)), lp(digest), lp(utf8('intervals=7;executions=1;skipped=2;h21=30')),
    );
    expect(toHex(validatorMessage(claim))).toBe(toHex(expected));
    const attest = signValidatorClaim(service, claim);
    expect(toHex(verifyValidatorClaim(claim, attest, [cardKey.publicKey, service.publicKey])!)).toBe(toHex(service.publicKey));
    for (const changed of [{ ...claim, counter: 43n, summary: { ...summary, next: 43n } }, { ...claim, serial: 'CARD-2' }, { ...claim, keyfileId: new Uint8Array(16) }, { ...claim, recordsDigest: new Uint8Array(32) }, { ...claim, summary: { ...summary, intervals: 6n } }]) {
      expect(verifyValidatorClaim(changed, attest, [service.publicKey])).toBeUndefined();
    }
    expect(() => validatorMessage({ ...claim, counter: 41n })).toThrow(ValidationServiceError);
    expect(() => validatorMessage({ ...claim, recordsDigest: new Uint8Array(31) })).toThrow(/32-byte records digest/);
  });

  it('the records digest is SHA-256 over the card-signed digests in order', () => {
    const root = { publicKey: cardKey.publicKey, serial: 'CARD-1', keyMode: 'individual' as const };
    const records = [0n, 1n, 2n].map((counter) => ({ nonce: uintToBytes(counter, 16), text: `WP execution #${counter}`, counter, signature: new Uint8Array(64) }));
    const accumulated = new RecordsDigest(root);
    for (const record of records) accumulated.add(record);
    expect(accumulated.count).toBe(3);
    expect(toHex(accumulated.digest())).toBe(toHex(sha256(concatBytes(...records.map((record) => recordDigest(record, root))))));
    expect(toHex(new RecordsDigest(root).digest())).toBe(toHex(sha256()));
  });
});

describe('the validator record\'s text (usage-text.ts grammar)', () => {
  it('reads back: validated C usage SUMMARY records DIGEST public key KEYDIGEST attest SIGNATURE', () => {
    const claim = claimFor(keyfile, 42n, digest, summary);
    const attest = signValidatorClaim(service, claim);
    const text = validatorRecordText(binding, claim, attest);
    expect(text).toBe(`WP validated 42 usage intervals=7;executions=1;skipped=2;h21=30 records ${toHex(digest)} public key ${binding.keyDigest} attest ${toHex(attest)}`);
    expect(parseUsageText(text, binding)).toMatchObject({ kind: 'validated', counter: 42n, summary, recordsDigest: toHex(digest), attestation: toHex(attest) });
    expect(formatUsageText(parseUsageText(text, binding)!)).toBe(text);
    expect(() => parseUsageText(text.replace(`records ${toHex(digest)}`, 'records 00'), binding)).toThrow(/32 bytes of lowercase hex after "records"/);
    expect(() => formatUsageText({ ...binding, kind: 'validated', counter: 42n, summary: undefined, attestation: undefined, recordsDigest: toHex(digest) })).toThrow(/only beside a summary/);
  });

  it('a program believes it only when the attest verifies with a key its keyfile names', () => {
    const claim = claimFor(keyfile, 42n, digest, summary);
    const text = validatorRecordText(binding, claim, signValidatorClaim(service, claim));
    expect(checkValidatorRecord({ text, counter: 42n }, keyfile)).toMatchObject({ status: 'attested', counter: 42n, summary });
    expect(checkValidatorRecord({ text, counter: 43n }, keyfile)).toMatchObject({ status: 'forged', why: expect.stringMatching(/names counter 42/) });
    expect(checkValidatorRecord({ text: text.replace('intervals=7', 'intervals=1'), counter: 42n }, keyfile)).toMatchObject({ status: 'forged', why: expect.stringMatching(/does not verify/) });
    expect(checkValidatorRecord({ text, counter: 42n }, { ...keyfile, validatorKeys: [] } as Keyfile)).toMatchObject({ status: 'forged', why: expect.stringMatching(/the keyfile names none/) });
    expect(checkValidatorRecord({ text, counter: 42n }, { ...keyfile, id: new Uint8Array(16) } as Keyfile).status).toBe('forged');
    const bare = formatUsageText({ ...binding, kind: 'validated', counter: 42n, summary: undefined, attestation: 'ab'.repeat(64) });
    expect(checkValidatorRecord({ text: bare, counter: 42n }, keyfile)).toMatchObject({ status: 'forged', why: expect.stringMatching(/no usage summary/) });
    expect(checkValidatorRecord({ text: formatUsageText({ ...binding, kind: 'interval' }), counter: 42n }, keyfile).status).toBe('none');
    expect(checkValidatorRecord({ text: 'SS validated 42 attest x', counter: 42n }, keyfile).status).toBe('none');
    expect(summariseUsage([{ text, counter: 42n }], binding, { base: summary })).toMatchObject({ intervals: 7n, next: 43n });
  });
});

describe('the service\'s answer', () => {
  it('parses only a well-formed answer; anything else is validation-service.answer', () => {
    const good = { counter: '42', summary: 'intervals=7;executions=1;skipped=2;h21=30', recordsDigest: toHex(digest), attest: 'ab'.repeat(64), validatorKey: toHex(service.publicKey) };
    expect(parseValidationAnswer(good)).toMatchObject({ counter: 42n, summary });
    const bad: unknown[] = [null, [], 'x', { ...good, counter: 42 }, { ...good, counter: '042' }, { ...good, summary: 'intervals=1' }, { ...good, summary: 'intervals=7;executions=1;skipped=2;h21=0' },
      { ...good, attest: 'AB'.repeat(64) }, { ...good, recordsDigest: '' }, { ...good, validatorKey: undefined }, { ...good, counter: (1n << 128n).toString() }];
    for (const value of bad) expect(() => parseValidationAnswer(value), JSON.stringify(value)).toThrow(expect.objectContaining({ code: 'validation-service.answer' }));
  });

  it('any JSON value parses or throws ValidationServiceError (fuzz)', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      try {
        parseValidationAnswer(value);
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationServiceError);
      }
    }), { numRuns: 500 });
  });
});
