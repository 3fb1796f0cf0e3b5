// Every error class a folder of src/ exports extends VscError (STYLE.md convention 4), so every error
// the project throws on purpose carries a stable `code` and the CLI's exit code.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VscError } from '../../src/errors/index.js';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const FOLDERS = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory() && name !== 'cli');

describe('error classes', () => {
  it.each(FOLDERS)('src/%s exports only errors that extend VscError', async (folder) => {
    const surface = (await import(join(SRC, folder, 'index.ts'))) as Record<string, unknown>;
    const errors = Object.entries(surface).filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error);
    const strays = errors.filter(([, value]) => value !== VscError && !((value as { prototype: unknown }).prototype instanceof VscError)).map(([name]) => name);
    expect(strays).toEqual([]);
  });

  it('finds the errors it is meant to check (the walk is not empty)', async () => {
    const crypto = (await import('../../src/crypto/index.js')) as Record<string, unknown>;
    expect(crypto['AeadAuthenticationError']).toBeDefined();
    const apdu = (await import('../../src/apdu/index.js')) as Record<string, unknown>;
    expect(Object.keys(apdu)).toContain('SignRefusedError');
    expect(new (apdu['SignRefusedError'] as new (reason: string, message: string) => VscError)('disabled', 'off').code).toBe('card.sign-refused.disabled');
  });
});
