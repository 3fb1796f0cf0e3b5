// `vsc server init` and `vsc admin ...` as an operator runs them: separate processes, real SQLite.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runVsc } from '../support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-admin-cli-'));
const data = join(dir, 'server');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vsc = (...args: string[]) => runVsc(args);

describe('vsc server init and vsc admin', { timeout: 60_000 }, () => {
  it('initialises once, prints the public key last, keeps the key file private', async () => {
    const init = await vsc('server', 'init', '--data', data);
    expect(init.code).toBe(0);
    expect(init.stdout.trim().split('\n').at(-1)).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(data, 'server-keys.json')).mode & 0o777).toBe(0o600);
    const again = await vsc('server', 'init', '--data', data);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/already holds a VSC server/);
  });

  it('enrolls, lists, shows, destroys and reports events; refusals exit 3, a missing server 1, usage 2', async () => {
    const enroll = await vsc('admin', 'enroll', '--data', data, '--serial', 'CARD-7');
    expect(enroll.code).toBe(0);
    expect(enroll.stdout.trim().split('\n').at(-1)).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{31}$/);
    expect((await vsc('admin', 'enroll', '--data', data, '--serial', 'CARD-7')).code).toBe(3);
    expect((await vsc('admin', 'list', '--data', data)).stdout).toMatch(/^CARD-7\tidle\t\(awaiting enrollment\)$/m);
    expect(JSON.parse((await vsc('admin', 'show', '--data', data, '--serial', 'CARD-7', '--json')).stdout)).toMatchObject({ serial: 'CARD-7', state: 'idle', enrolled: false });
    expect((await vsc('admin', 'destroy', '--data', data, '--serial', 'CARD-7')).code).toBe(0);
    expect(JSON.parse((await vsc('admin', 'show', '--data', data, '--serial', 'CARD-7', '--json')).stdout).state).toBe('destroyed');
    expect((await vsc('admin', 'destroy', '--data', data, '--serial', 'CARD-7')).code).toBe(3);
    const events = JSON.parse((await vsc('admin', 'events', '--data', data, '--serial', 'CARD-7', '--json')).stdout) as { operation: string; outcome: string }[];
    expect(events.map((event) => `${event.operation}:${event.outcome}`)).toEqual(['create:ok', 'destroy:ok', 'destroy:refused: wrong-state']);
    expect((await vsc('admin', 'show', '--data', data, '--serial', 'NOPE')).code).toBe(3);
    const missing = await vsc('admin', 'list', '--data', join(dir, 'nothing'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/run "vsc server init --data/);
    expect((await vsc('admin', 'list')).code).toBe(2);
  });
});
