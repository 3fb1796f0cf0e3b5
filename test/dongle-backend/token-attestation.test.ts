// The issuing authority's token attestation (patent 003 [0096]: the vendor "may wish to validate the smart card
// manufacturer and/or personalizer"; DESIGN.md "Software rental", trust model): the attribute check each refusal
// names, the authority's name as attester, and the refusal of an emulated dongle, which is not duplication-protected.
// The checks on real SoftHSM2 tokens are in test/e2e/dongle-attest.test.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attestationMessage } from '../../src/card-attestation/index.js';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ExitCode } from '../../src/errors/index.js';
import {
  DongleError, REVOCATION_LIST_FORMAT, attestTokenCard, defaultAuthorityName, dongleSecrets, initAuthority, initDongleCard, openEmulatedDongle,
  readAuthorityList, readAuthorityName, readAuthorityReference, tokenKeyProblems, withAuthorityAttester, type CardKeyFacts,
} from '../../src/dongle-backend/index.js';

/** What `promise` rejects with (undefined when it fulfils). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (error: unknown) => error);
}

const dir = mkdtempSync(join(tmpdir(), 'vsc-token-attestation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What SoftHSM2 2.6 reports (checked by test/e2e/dongle-attest.test.ts): a key generated non-extractable on the token. */
const GENERATED: CardKeyFacts = { sensitive: true, extractable: false, neverExtractable: true, local: true, ed25519: true, publicKey: new Uint8Array(32) };
/** ... one generated with CKA_EXTRACTABLE true and CKA_SENSITIVE false. */
const CREATED_EXTRACTABLE: CardKeyFacts = { ...GENERATED, sensitive: false, extractable: true, neverExtractable: false };
/** ... one generated extractable, then set CKA_EXTRACTABLE false and CKA_SENSITIVE true: the flags remember. */
const MADE_UNEXTRACTABLE_LATER: CardKeyFacts = { ...GENERATED, neverExtractable: false };
/** ... one imported with C_CreateObject, sensitive and not extractable (a universal key, [0098]). */
const IMPORTED: CardKeyFacts = { ...GENERATED, neverExtractable: false, local: false };

describe('tokenKeyProblems: what the authority demands of a card key before it attests it', () => {
  it('accepts a key generated on the token that never was extractable', () => {
    expect(tokenKeyProblems(GENERATED)).toEqual([]);
  });

  it.each([
    ['CKA_SENSITIVE false', { sensitive: false }, /^CKA_SENSITIVE is false \(must be true: otherwise the token would reveal the key's value\)$/],
    ['CKA_EXTRACTABLE true', { extractable: true }, /^CKA_EXTRACTABLE is true \(must be false: otherwise the key could leave the token wrapped/],
    ['CKA_NEVER_EXTRACTABLE false', { neverExtractable: false }, /^CKA_NEVER_EXTRACTABLE is false \(must be true: otherwise the key was extractable once/],
    ['CKA_LOCAL false', { local: false }, /^CKA_LOCAL is false \(must be true: otherwise the key was imported, not generated on the token/],
    ['another Edwards curve', { ed25519: false }, /^CKA_EC_PARAMS does not name Ed25519/],
  ] as const)('names the one attribute that fails: %s', (_, change, message) => {
    const problems = tokenKeyProblems({ ...GENERATED, ...change });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('names every failing attribute of a key created extractable, and of one made unextractable only later', () => {
    const created = tokenKeyProblems(CREATED_EXTRACTABLE).join('; ');
    expect(created).toMatch(/CKA_SENSITIVE is false/);
    expect(created).toMatch(/CKA_EXTRACTABLE is true/);
    expect(created).toMatch(/CKA_NEVER_EXTRACTABLE is false/);
    expect(created).not.toMatch(/CKA_LOCAL/);
    expect(tokenKeyProblems(MADE_UNEXTRACTABLE_LATER)).toEqual([expect.stringMatching(/^CKA_NEVER_EXTRACTABLE is false/)]);
  });

  it('[0098]-[0102] an imported universal key fails CKA_LOCAL and CKA_NEVER_EXTRACTABLE, except right after the authority imported it itself', () => {
    expect(tokenKeyProblems(IMPORTED).map((problem) => problem.split(' ')[0])).toEqual(['CKA_NEVER_EXTRACTABLE', 'CKA_LOCAL']);
    expect(tokenKeyProblems(IMPORTED, { importedHere: true })).toEqual([]);
  });

  it('never waives CKA_SENSITIVE or CKA_EXTRACTABLE, not even for the authority\'s own import', () => {
    const problems = tokenKeyProblems({ ...IMPORTED, sensitive: false, extractable: true }, { importedHere: true });
    expect(problems.map((problem) => problem.split(' ')[0])).toEqual(['CKA_SENSITIVE', 'CKA_EXTRACTABLE']);
  });
});

describe('the issuing authority as attester', () => {
  it('is named at init (--name), else "issuing authority DIRNAME"; a bad name is refused (exit 2) before anything is made', async () => {
    const named = join(dir, 'named');
    await initAuthority(named, new Date(), 'ACME dongle issuing');
    expect(readAuthorityName(named)).toBe('ACME dongle issuing');
    const unnamed = join(dir, 'plain-authority');
    await initAuthority(unnamed);
    expect(readAuthorityName(unnamed)).toBe('issuing authority plain-authority');
    expect(defaultAuthorityName('/srv/\u00e9mission')).toBe('issuing authority ?mission');
    for (const bad of ['', 'x'.repeat(65), 'tab\there', 'caf\u00e9']) {
      const error = await rejection(initAuthority(join(dir, 'bad-name'), new Date(), bad));
      expect(error).toBeInstanceOf(DongleError);
      expect((error as DongleError).exitCode).toBe(ExitCode.usage);
      expect(existsSync(join(dir, 'bad-name'))).toBe(false);
    }
  });

  it('an authority made before names existed is "issuing authority DIRNAME"; a damaged name is refused, naming the file', async () => {
    const older = join(dir, 'older');
    await initAuthority(older, new Date(), 'to be removed');
    const keyFile = join(older, 'authority.key');
    const fields = JSON.parse(readFileSync(keyFile, 'utf8')) as Record<string, unknown>;
    delete fields['name'];
    writeFileSync(keyFile, JSON.stringify(fields), { mode: 0o600 });
    expect(readAuthorityName(older)).toBe('issuing authority older');
    writeFileSync(keyFile, JSON.stringify({ ...fields, name: 42 }), { mode: 0o600 });
    expect(() => readAuthorityName(older)).toThrow(/authority\.key is damaged: expected "name" as 1\.\.64 printable ASCII characters/);
  });

  it('signs with the key card records name and its revocation lists verify with: one key for vendors to trust', async () => {
    const root = join(dir, 'named');
    await withAuthorityAttester(root, async ({ name, signer, list }) => {
      expect(name).toBe('ACME dongle issuing');
      expect(toHex(signer.publicKey)).toBe(toHex(readAuthorityReference(root).signingKey));
      expect(list.sequence).toBe(readAuthorityList(root).sequence);
    });
  });

  it('keeps the two signed formats apart: an attestation message never starts like a revocation list\'s signed bytes', () => {
    const message = attestationMessage({ serial: 'S', publicKey: new Uint8Array(32), keyMode: 'individual', kind: 'token', attester: 'A', issuedAt: new Date(0).toISOString() }, new Uint8Array(32));
    const list = utf8(`${REVOCATION_LIST_FORMAT}\0`);
    expect(toHex(message.subarray(0, list.length))).not.toBe(toHex(list));
  });
});

describe('attestTokenCard refuses an emulated dongle', () => {
  const passphrase = join(dir, 'passphrase');
  writeFileSync(passphrase, 'stick passphrase\n', { mode: 0o600 });
  const secrets = dongleSecrets(() => Promise.reject(new Error('the tests never prompt')));

  it('naming it not duplication-protected, with exit 3, whatever card it holds; the authority\'s files are unchanged', { timeout: 60_000 }, async () => {
    const authorityDir = join(dir, 'named');
    const dongle = openEmulatedDongle(`emulated:${join(dir, 'stick')}?pin-source=file:${passphrase}`, secrets);
    try {
      await initDongleCard({ dongle, serial: 'EMU-1', password: utf8('owner password'), authority: readAuthorityReference(authorityDir) });
      const list = readFileSync(join(authorityDir, 'revocations.list'));
      const error = await rejection(attestTokenCard({ authorityDir, dongle }));
      expect(error).toBeInstanceOf(DongleError);
      expect((error as DongleError).code).toBe('dongle.not-a-token');
      expect((error as DongleError).exitCode).toBe(ExitCode.refusedByState);
      expect((error as Error).message).toMatch(/^not attested: emulated dongle .* is not duplication-protected: whoever copies its directory has a second, equal dongle/);
      expect(readFileSync(join(authorityDir, 'revocations.list'))).toEqual(list);
      const waived = await rejection(attestTokenCard({ authorityDir, dongle, importedHere: true }));
      expect((waived as DongleError).exitCode, 'CKA_LOCAL is waived only for the key just imported').toBe(ExitCode.usage);
      expect((waived as Error).message).toMatch(/importedHere needs the expectedPublicKey/);
    } finally {
      await dongle.close();
    }
  });
});
