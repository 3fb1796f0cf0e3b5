// `vsc license hub serve | unlock` (Wibu 000 P002 the Hub Web Service; "CM-Box Backup" §2.10 the central locking
// instance, unlocking "handled exclusively" by it): serve runs as its own process, makes the data directory with its
// 0600 authority key and admin token, and prints the authority public key last; unlock prints the authority's unlock
// sequence and takes the serial off the list. --json, --help, exit codes 0 ok, 2 usage, 3 refused.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../../src/crypto/index.js';
import { parseLockSequence, signHubLicensorRequest, signHubLockRequest, verifyLockSequence } from '../../src/license/index.js';
import { spawnTsScript, type VscProcess } from '../support/index.js';
import { runHubCommand } from './license-hub-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'vsc-license-hub-cli-'));
const data = join(dir, 'data');
const RUNNER = fileURLToPath(new URL('./license-hub-runner.ts', import.meta.url));
const LICENSOR = ed25519KeyFromSeed(generateEd25519Seed());

async function vsc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...line: unknown[]) => void out.push(line.map(String).join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...line: unknown[]) => void err.push(line.map(String).join(' ')));
  try {
    return { code: await runHubCommand(args), stdout: out.join('\n'), stderr: err.join('\n') };
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
    expect(await runHubCommand(['hub', 'authorize', '--data', data, '--licensor-key', toHex(LICENSOR.publicKey), '--name', 'CLI Software'])).toBe(0);
    expect(await runHubCommand(['hub', 'authorize', '--data', data, '--licensor-key', 'abc', '--name', 'CLI Software'])).toBe(2);
    expect(await runHubCommand(['hub', 'revoke', '--data', data, '--licensor-key', toHex(ed25519KeyFromSeed(generateEd25519Seed()).publicKey)])).toBe(3);
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

describe('stopping', () => {
  it('stops on SIGTERM with exit 0', async () => {
    const run = await server.stop('SIGTERM');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('restore hub stopped');
  });
});
