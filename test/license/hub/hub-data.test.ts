// The hub's data directory (src/license/hub/hub-data.ts; Wibu 000 §2.10 the central authority): the authority key and
// the admin token are made once, 0600, kept across restarts, refused when others can read them; the admin token is
// compared as a digest.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/bytes/index.js';
import { isAdminAuthorization, loadHubData } from '../../../src/license/hub/index.js';
import { thrown } from '../../support/index.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vsc-hub-data-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('hub data directory', () => {
  it('makes the directory 0700 and the authority key and admin token 0600 once, and keeps them', () => {
    const data = join(dir, 'hub');
    const first = loadHubData(data);
    expect(statSync(data).mode & 0o777).toBe(0o700);
    for (const file of ['authority.key', 'admin.token']) expect(statSync(join(data, file)).mode & 0o777).toBe(0o600);
    const again = loadHubData(data);
    expect(toHex(again.authority.publicKey)).toBe(toHex(first.authority.publicKey));
    expect(toHex(again.adminTokenHash)).toBe(toHex(first.adminTokenHash));
    expect(first.databaseUrl).toBe(join(data, 'hub.sqlite'));
    expect(readFileSync(join(data, 'authority.key'), 'utf8')).toMatch(/^\{"format":"vsc-license-hub-authority\/1","seed":"[0-9a-f]{64}"\}\n$/);
  });

  it('takes the admin token only as "Bearer <token>"', () => {
    const data = loadHubData(dir);
    const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    expect(token).toMatch(/^vschub_[0-9a-f]{64}$/);
    expect(isAdminAuthorization(data, `Bearer ${token}`)).toBe(true);
    for (const header of [undefined, '', token, `Bearer ${token}x`, `bearer ${token}`, `Bearer  ${token}`, 'Bearer ']) expect(isAdminAuthorization(data, header)).toBe(false);
  });

  it('refuses an authority key others can read, and files that are not its own format', () => {
    loadHubData(dir);
    chmodSync(join(dir, 'authority.key'), 0o644);
    expect((thrown(() => loadHubData(dir)) as Error).message).toContain('chmod 600');
    writeFileSync(join(dir, 'authority.key'), '{"format":"other","seed":"00"}', { mode: 0o600 });
    chmodSync(join(dir, 'authority.key'), 0o600);
    expect((thrown(() => loadHubData(dir)) as Error).message).toContain('expected {"format": "vsc-license-hub-authority/1"');
    rmSync(join(dir, 'authority.key'));
    writeFileSync(join(dir, 'admin.token'), 'short\n', { mode: 0o600 });
    expect((thrown(() => loadHubData(dir)) as Error).message).toContain('admin.token: expected one line "vschub_" and 64 hex digits');
  });
});
