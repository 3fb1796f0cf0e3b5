// The validation service's key (patent 003 [0094]: "the digital signature uses the private key of the audit
// validation service"): made once in a 0700 directory, the file 0600, the private key sealed under the service's
// password (a wrong one is exit 4), the public key readable without it; a damaged file is refused naming it.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../src/bytes/index.js';
import { ed25519Verify } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { initValidator, openValidator, readValidatorPublic, ValidatorKeyError } from '../../src/rental/validator-keys.js';

const root = mkdtempSync(join(tmpdir(), 'vsc-validator-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('validator keys ([0094])', () => {
  it('init makes the key once (0700 directory, 0600 file); open needs the password and signs with the printed key', async () => {
    const dir = join(root, 'service');
    const password = utf8('validator password');
    const made = await initValidator(dir, 'Audit Co', password);
    expect(password.every((byte) => byte === 0)).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'validator.json')).mode & 0o777).toBe(0o600);
    expect(toHex(readValidatorPublic(dir).signingKey)).toBe(toHex(made.signingKey));
    const keys = await openValidator(dir, utf8('validator password'));
    expect(keys.name).toBe('Audit Co');
    expect(ed25519Verify(made.signingKey, utf8('m'), keys.signer.sign(utf8('m')))).toBe(true);
    const file = readFileSync(join(dir, 'validator.json'), 'utf8');
    expect(file).not.toMatch(/seed|private/);
    await expect(initValidator(dir, 'Again', utf8('x'))).rejects.toMatchObject({ code: 'validator.exists' });
    const wrong = await openValidator(dir, utf8('wrong')).catch((error: unknown) => error);
    expect(wrong).toBeInstanceOf(ValidatorKeyError);
    expect(wrong).toMatchObject({ code: 'validator.password', exitCode: ExitCode.authenticationFailed });
  }, 30_000);

  it('refuses a missing directory, an empty name, a damaged file, and a file others can read', async () => {
    await expect(openValidator(join(root, 'none'), utf8('x'))).rejects.toMatchObject({ code: 'validator.missing', message: expect.stringMatching(/vsc validator init --data/) });
    await expect(initValidator(join(root, 'blank'), ' ', utf8('x'))).rejects.toMatchObject({ code: 'validator.name', exitCode: ExitCode.usage });
    const dir = join(root, 'damaged');
    await initValidator(dir, 'Audit Co', utf8('pw'));
    const path = join(dir, 'validator.json');
    const good = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    for (const [field, value] of [['signingKey', 'zz'], ['sealed', '00'], ['format', 'other'], ['kdf', { salt: 'x' }]] as const) {
      writeFileSync(path, JSON.stringify({ ...good, [field]: value }), { mode: 0o600 });
      expect(() => readValidatorPublic(dir), field).toThrow(/validator.json: /);
    }
    // Another key beside the sealed one: the sealed key does not match it.
    writeFileSync(path, JSON.stringify({ ...good, signingKey: '11'.repeat(32) }), { mode: 0o600 });
    await expect(openValidator(dir, utf8('pw'))).rejects.toMatchObject({ code: 'validator.damaged' });
    writeFileSync(path, JSON.stringify(good), { mode: 0o600 });
    chmodSync(path, 0o644);
    expect(() => readValidatorPublic(dir)).toThrow(/600/);
  }, 30_000);
});
