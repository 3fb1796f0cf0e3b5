// createFileOnce (src/files/atomic-write.ts): a key file written whole or not at all, the first writer wins.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileOnce } from '../../src/files/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-once-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('createFileOnce', () => {
  it('creates the file 0600 with the content, zeroes the caller\'s copy and leaves no temporary file', () => {
    const content = new TextEncoder().encode('secret key\n');
    expect(createFileOnce(join(dir, 'key'), content)).toBe(true);
    expect(readFileSync(join(dir, 'key'), 'utf8')).toBe('secret key\n');
    expect(statSync(join(dir, 'key')).mode & 0o777).toBe(0o600);
    expect(content.every((byte) => byte === 0)).toBe(true);
    expect(readdirSync(dir)).toEqual(['key']);
  });

  it('keeps the file a first writer created: the second gets false and changes nothing', () => {
    createFileOnce(join(dir, 'key'), new TextEncoder().encode('first'));
    expect(createFileOnce(join(dir, 'key'), new TextEncoder().encode('second'))).toBe(false);
    expect(readFileSync(join(dir, 'key'), 'utf8')).toBe('first');
    expect(readdirSync(dir)).toEqual(['key']);
  });
});
