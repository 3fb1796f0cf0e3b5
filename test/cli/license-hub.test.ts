// `vsc license hub serve | authorize | revoke | unlock` (Wibu 000 P002 the Hub Web Service; "CM-Box Backup" §2.10 the
// central locking instance, which takes requests from authorized licensors only, unlocking "handled exclusively" by
// it): serve runs as its own process, makes the data directory with its 0600 authority key and admin token, and prints
// the authority public key last; authorize and revoke decide which licensors register and report locks; unlock prints
// the authority's unlock sequence and takes the serial off the list. --json, --help, exit codes 0 ok, 2 usage, 3 refused.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import {
  buildHubService, openHubBackend, parseLockSequence, signHubLicensorRequest, signHubLockRequest, verifyLockSequence, type HubBackend,
} from '../../src/license/index.js';
import { spawnTsScript, type VscProcess } from '../support/index.js';
import { runLicenseCommand } from './license-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-license-hub-cli-'));
const data = join(dir, 'data');
const RUNNER = fileURLToPath(new URL('./license-runner.ts', import.meta.url));
const LICENSOR = ed25519KeyFromSeed(generateEd25519Seed());

async function vsc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...line: unknown[]) => void out.push(line.map(String).join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...line: unknown[]) => void err.push(line.map(String).join(' ')));
  try {
    return { code: await runLicenseCommand(args), stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

let server: VscProcess;
let url: string;
let authorityKey: string;

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  server = spawnTsScript(RUNNER, ['hub', 'serve', '--data', data, '--listen', '127.0.0.1:0']);
  const match = await server.waitFor(/restore hub listening on (http:\S+); SIGTERM or Ctrl-C stops it\nauthority public key:\n([0-9a-f]{64})\n/, 30_000);
  url = match[1]!;
  authorityKey = match[2]!;
}, 60_000);

afterAll(async () => {
  if (server?.running()) await server.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('vsc license hub serve', () => {
  it('makes the data directory 0700 with its authority key and admin token 0600, and prints the authority key last', () => {
    expect(statSync(data).mode & 0o777).toBe(0o700);
    for (const file of ['authority.key', 'admin.token']) expect(statSync(join(data, file)).mode & 0o777).toBe(0o600);
    expect(server.stdout().trimEnd().split('\n').at(-1)).toBe(authorityKey);
  });

  it('serves the page under default-src \'self\', and the licensor and lock routes', async () => {
    const page = await fetch(`${url}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/hub-page.js"></script>');
    const registration = () => signHubLicensorRequest({ name: 'CLI Software', restoreUrl: 'http://127.0.0.1:9/', time: Math.floor(Date.now() / 1000) }, LICENSOR);
    expect((await post('/v1/licensors', registration())).status).toBe(403);
    expect(await runLicenseCommand(['hub', 'authorize', '--data', data, '--licensor-key', toHex(LICENSOR.publicKey), '--name', 'CLI Software'])).toBe(0);
    expect(await runLicenseCommand(['hub', 'authorize', '--data', data, '--licensor-key', 'abc', '--name', 'CLI Software'])).toBe(2);
    expect(await runLicenseCommand(['hub', 'revoke', '--data', data, '--licensor-key', toHex(ed25519KeyFromSeed(generateEd25519Seed()).publicKey)])).toBe(3);
    expect((await post('/v1/licensors', registration())).status).toBe(200);
    const locked = await post('/v1/locks', signHubLockRequest({ serial: 'CLI-LOST-1', time: Math.floor(Date.now() / 1000) }, LICENSOR));
    expect(locked.status).toBe(200);
    expect(toHex(parseLockSequence(locked.body['lockSequence'] as string).body.authorityKey)).toBe(authorityKey);
  });
});

describe('vsc license hub unlock', () => {
  it('prints the authority\'s unlock sequence and takes the serial off the list; a second unlock is refused (exit 3)', async () => {
    const unlocked = await vsc('hub', 'unlock', '--data', data, '--serial', 'CLI-LOST-1', '--json');
    expect(unlocked.code, unlocked.stderr).toBe(0);
    const event = JSON.parse(unlocked.stdout) as { event: string; serial: string; unlockSequence: string };
    expect(event).toMatchObject({ event: 'unlocked', serial: 'CLI-LOST-1' });
    const signed = parseLockSequence(event.unlockSequence);
    expect(signed.body.kind).toBe('unlock');
    expect(toHex(signed.body.authorityKey)).toBe(authorityKey);
    expect(verifyLockSequence(signed)).toBe(true);
    expect(await (await fetch(`${url}/v1/locks`)).json()).toEqual({ locks: [] });
    const again = await vsc('hub', 'unlock', '--data', data, '--serial', 'CLI-LOST-1');
    expect(again.code).toBe(3);
    expect(again.stderr).toBe('vsc: serial CLI-LOST-1 is not on the central locking list');
  });

  it.each([
    [['hub', 'unlock', '--data', data], '--serial is required'],
    [['hub', 'unlock', '--data', data, '--serial', 'A\tB'], 'without control characters'],
    [['hub', 'serve', '--data', data, '--listen', 'nowhere'], '--listen: expected HOST:PORT'],
    [['hub', 'serve', '--data', data, '--forward-timeout-seconds', '0'], '--forward-timeout-seconds: expected a whole number in 1..600'],
  ])('refuses %j (exit 2)', async (args, message) => {
    const run = await vsc(...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('has --help on the group and each command', async () => {
    const help = await vsc('hub', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('serve');
    expect(help.stdout).toContain('unlock');
    expect((await vsc('hub', 'serve', '--help')).stdout).toContain('--forward-timeout-seconds');
  });
});

describe('vsc license hub authorize | revoke', () => {
  const own = join(dir, 'authorize');
  const key = ed25519KeyFromSeed(generateEd25519Seed());
  const keyHex = toHex(key.publicKey);
  const now = () => Math.floor(Date.now() / 1000);

  it('authorizes a licensor, which then registers; revoke removes its registration and refuses its lock reports; both audited', async () => {
    const authorized = await vsc('hub', 'authorize', '--data', own, '--licensor-key', keyHex, '--name', 'Own Software', '--json');
    expect(authorized.code, authorized.stderr).toBe(0);
    expect(JSON.parse(authorized.stdout)).toEqual({ event: 'authorized', licensorKey: keyHex, name: 'Own Software', changed: true });
    const again = await vsc('hub', 'authorize', '--data', own, '--licensor-key', keyHex, '--name', 'Own Software');
    expect(again).toMatchObject({ code: 0, stdout: `licensor Own Software (${keyHex.slice(0, 16)}…) was authorized already` });

    // The hub's routes in-process (fastify's inject), on the data directory the commands work on.
    const withHub = async <T>(work: (call: (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }>, hub: HubBackend) => Promise<T>): Promise<T> => {
      const hub = await openHubBackend({ dataDir: own });
      const app = await buildHubService({ hub });
      try {
        return await work(async (method, path, body) => {
          const answer = await app.inject({ method, url: path, ...(body === undefined ? {} : { payload: body as Record<string, unknown> }) });
          return { status: answer.statusCode, body: answer.json() };
        }, hub);
      } finally {
        await app.close();
        await hub.close();
      }
    };
    await withHub(async (call) => {
      expect((await call('POST', '/v1/licensors', signHubLicensorRequest({ name: 'Own Software', restoreUrl: 'http://127.0.0.1:9/', time: now() }, key))).status).toBe(200);
      expect(((await call('GET', '/v1/licensors')).body['licensors'] as Array<{ name: string }>).map((licensor) => licensor.name)).toEqual(['Own Software']);
    });

    const revoked = await vsc('hub', 'revoke', '--data', own, '--licensor-key', keyHex, '--json');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({ event: 'revoked', licensorKey: keyHex });
    await withHub(async (call, hub) => {
      expect(await hub.database.db.selectFrom('hub_licensors').selectAll().execute()).toEqual([]);
      expect(await hub.database.db.selectFrom('hub_authorized_licensors').selectAll().execute()).toEqual([]);
      const report = await call('POST', '/v1/locks', signHubLockRequest({ serial: 'OWN-LOST-1', time: now() }, key));
      expect(report).toMatchObject({ status: 403, body: { error: { reason: 'unauthenticated' } } });
      expect((await call('GET', '/v1/locks')).body).toEqual({ locks: [] });
      const audit = await hub.database.db.selectFrom('hub_audit').selectAll().orderBy('id').execute();
      expect(audit.map((row) => [row.action, row.subject, row.outcome, row.actor, row.client])).toEqual([
        ['licensor.authorize', `licensor ${keyHex}`, 'ok', 'administrator', 'cli'],
        ['licensor.register', `licensor ${keyHex}`, 'ok', 'licensor Own Software', '127.0.0.1'],
        ['licensor.revoke', `licensor ${keyHex}`, 'ok', 'administrator', 'cli'],
        ['lock.report', 'serial OWN-LOST-1', 'unauthenticated', `licensor ${keyHex}`, '127.0.0.1'],
      ]);
    });

    const twice = await vsc('hub', 'revoke', '--data', own, '--licensor-key', keyHex);
    expect(twice).toMatchObject({ code: 3, stderr: `vsc: licensor ${keyHex.slice(0, 16)}… is not authorized at this hub` });
  });

  it.each([
    [['hub', 'authorize', '--data', own, '--licensor-key', 'abc', '--name', 'X'], '--licensor-key: expected 64 lowercase hex digits, got "abc"'],
    [['hub', 'authorize', '--data', own, '--licensor-key', 'AB'.repeat(32), '--name', 'X'], '--licensor-key: expected 64 lowercase hex digits'],
    [['hub', 'authorize', '--data', own, '--licensor-key', 'ab'.repeat(33), '--name', 'X'], '--licensor-key: expected 64 lowercase hex digits'],
    [['hub', 'authorize', '--data', own, '--name', 'X'], '--licensor-key is required'],
    [['hub', 'authorize', '--data', own, '--licensor-key', 'ab'.repeat(32)], '--name is required'],
    [['hub', 'authorize', '--data', own, '--licensor-key', 'ab'.repeat(32), '--name', 'A\nB'], '--name: expected at most 128 characters without control characters'],
    [['hub', 'authorize', '--data', own, '--licensor-key', 'ab'.repeat(32), '--name', 'N'.repeat(129)], '--name: expected at most 128 characters'],
    [['hub', 'revoke', '--data', own, '--licensor-key', 'xyz'], '--licensor-key: expected 64 lowercase hex digits, got "xyz"'],
    [['hub', 'revoke', '--data', own], '--licensor-key is required'],
  ])('refuses %j (exit 2), authorizing nobody', async (args, message) => {
    const run = await vsc(...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    const hub = await openHubBackend({ dataDir: own });
    try {
      expect(await hub.database.db.selectFrom('hub_authorized_licensors').selectAll().execute()).toEqual([]);
    } finally {
      await hub.close();
    }
  });

  it('lists authorize and revoke in the group\'s help', async () => {
    const help = await vsc('hub', '--help');
    expect(help.stdout).toContain('authorize');
    expect(help.stdout).toContain('revoke');
    expect((await vsc('hub', 'authorize', '--help')).stdout).toContain('--licensor-key');
  });
});

describe('stopping', () => {
  it('stops on SIGTERM with exit 0', async () => {
    const run = await server.stop('SIGTERM');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('restore hub stopped');
  });
});
