// Every error class of src/ extends VscError (STYLE.md convention 4), so every error the project
// throws on purpose carries a stable `code` and the CLI's exit code: each folder's surface is walked,
// and the sources are read for classes that extend a built-in error directly.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VscError } from '../../src/errors/index.js';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const FILES = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((path) => path.endsWith('.ts'))
  .map((path) => path.split('\\').join('/'));
const SURFACES = FILES.filter((path) => path.endsWith('/index.ts')).map((path) => path.slice(0, -'/index.ts'.length));

/** The one class allowed to extend Error itself. */
const BASE = 'errors/vsc-error.ts';

describe('error classes', () => {
  it.each(SURFACES)('src/%s exports only errors that extend VscError', async (folder) => {
    const surface = (await import(join(SRC, folder, 'index.ts'))) as Record<string, unknown>;
    const errors = Object.entries(surface).filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error);
    const strays = errors.filter(([, value]) => value !== VscError && !((value as { prototype: unknown }).prototype instanceof VscError)).map(([name]) => name);
    expect(strays).toEqual([]);
  });

  it('no class in src/ extends a built-in error but VscError itself', () => {
    const builtIn = /\bextends\s+(?:Error|TypeError|RangeError|SyntaxError|AggregateError)\b/;
    const strays = FILES.filter((path) => path !== BASE && builtIn.test(readFileSync(join(SRC, path), 'utf8')));
    expect(strays).toEqual([]);
    expect(builtIn.test(readFileSync(join(SRC, BASE), 'utf8'))).toBe(true);
  });

  it('finds the errors it is meant to check (the walk is not empty)', async () => {
    expect(SURFACES).toEqual(expect.arrayContaining(['apdu', 'apdu/piv', 'card-client', 'channel', 'crypto', 'vsc-server/dialect']));
    const crypto = (await import('../../src/crypto/index.js')) as Record<string, unknown>;
    expect(crypto['AeadAuthenticationError']).toBeDefined();
    const apdu = (await import('../../src/apdu/index.js')) as Record<string, unknown>;
    expect(Object.keys(apdu)).toContain('SignRefusedError');
    expect(new (apdu['SignRefusedError'] as new (reason: string, message: string) => VscError)('disabled', 'off').code).toBe('card.sign-refused.disabled');
  });
});
