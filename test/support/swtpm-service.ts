// A TPM for the end-to-end tests: swtpm (socket mode, TCP on two neighbouring free loopback ports, state in a temp
// directory) with a tpm2-pkcs11 token on it, the machine's-TPM dongle of DESIGN.md "Dongle-backed card" (patent 004
// claim 10).
// The token is made through the tpm2-pkcs11 module itself (C_InitToken, C_InitPIN via pkcs11-tool): tpm2_ptool
// addtoken leaves transient objects loaded and, without a resource manager, runs swtpm out of its three object
// slots ("out of memory for object contexts"). Dictionary-attack protection is switched off on this TPM: every
// stop without TPM2_Shutdown counts as a failed authorisation, and three lock the token's PIN for 1000 s.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DongleFixture } from './dongle-fixture.js';
import { E2E_INSTALL_COMMAND, run } from './pkcs11.js';
import { dongleUri, writePinFile } from './softhsm-token.js';

/** The Debian packages this needs are on the README's test line. */
const SWTPM_INSTALL_COMMAND = E2E_INSTALL_COMMAND;

const TPM2_PKCS11_MODULE_PATHS = [
  '/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so',
  '/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1',
  '/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so',
  '/usr/lib/aarch64-linux-gnu/libtpm2_pkcs11.so.1',
  '/usr/lib/pkcs11/libtpm2_pkcs11.so',
  '/usr/local/lib/libtpm2_pkcs11.so',
];

const READY_TIMEOUT_MS = 10_000;

export interface SwtpmService {
  readonly label: string;
  readonly pin: string;
  readonly pinFile: string;
  /** The token's URI: module-path of tpm2-pkcs11, pin-source=file:... */
  readonly uri: string;
  readonly modulePath: string;
  readonly dir: string;
  /** What a process needs to reach this TPM's token (TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE, quiet logs). */
  readonly env: Readonly<Record<string, string>>;
  uriWithPinFile(path: string): string;
  /** Stops swtpm (SIGTERM, then waits for it): the TPM is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same ports with the same state. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a TPM that hangs instead of going away. */
  pause(): void;
  resume(): void;
  /** Stops swtpm and deletes the state, store and PIN file. */
  close(): Promise<void>;
}

function isExecutableOnPath(name: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function requireTool(name: string, pkg: string): void {
  if (!isExecutableOnPath(name)) throw new Error(`expected ${name} to be installed, found none; install package ${pkg}: ${SWTPM_INSTALL_COMMAND}`);
}

/** tpm2-pkcs11's module: the package's own file list first, then the usual places. */
export function findTpm2Pkcs11Module(): string | undefined {
  let listed: string[] = [];
  try {
    listed = execFileSync('dpkg', ['-L', 'libtpm2-pkcs11-1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 })
      .split('\n')
      .filter((line) => line.endsWith('/pkcs11/libtpm2_pkcs11.so') || line.endsWith('/libtpm2_pkcs11.so.1'));
  } catch {
    // no dpkg, or the package is missing
  }
  return [...listed, ...TPM2_PKCS11_MODULE_PATHS].find((path) => {
    try {
      accessSync(path, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function listen(port: number): Promise<ReturnType<typeof createServer> | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** A free port P with P + 1 free too: the swtpm TCTI reaches the control channel on the port after the server's. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await listen(0);
    const address = first?.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const second = port > 0 && port < 65535 ? await listen(port + 1) : undefined;
    await Promise.all([first, second].map((server) => new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)))));
    if (second !== undefined) return port;
  }
  throw new Error('found no two free neighbouring ports on 127.0.0.1 for swtpm');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  stderr: string;
}

function startSwtpm(stateDir: string, port: number, ctrlPort: number): Running {
  const child = spawn('swtpm', [
    'socket', '--tpm2',
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl', `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
    '--tpmstate', `dir=${stateDir}`,
    '--flags', 'not-need-init,startup-clear',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const running: Running = { child, exited: new Promise((resolve) => child.once('close', () => resolve())), stderr: '' };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    running.stderr = (running.stderr + chunk).slice(-4000);
  });
  child.once('error', (error) => {
    running.stderr += `\nspawn failed: ${error.message}`;
  });
  return running;
}

/** Waits until swtpm accepts connections; false when it exited first (a port taken meanwhile). */
async function ready(running: Running, port: number): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null || running.child.signalCode !== null) return false;
    if (await accepts(port)) return true;
    await sleep(20);
  }
  running.child.kill('SIGKILL');
  throw new Error(`swtpm did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms: ${running.stderr.trim()}`);
}

async function stopRunning(running: Running | undefined): Promise<void> {
  if (running === undefined || running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.child.kill('SIGCONT');
  running.child.kill('SIGTERM');
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 5_000);
  await running.exited;
  clearTimeout(timer);
}

export interface SwtpmOptions {
  readonly label?: string;
  readonly pin?: string;
  readonly soPin?: string;
}

/** Starts swtpm with a tpm2-pkcs11 token `label` (user PIN `pin`). Fails naming the Debian package of whatever is missing. */
export async function startSwtpmService(options: SwtpmOptions = {}): Promise<SwtpmService> {
  const { label = 'vsc-tpm', pin = '246810', soPin = '13579111' } = options;
  requireTool('swtpm', 'swtpm');
  requireTool('tpm2_dictionarylockout', 'tpm2-tools');
  requireTool('pkcs11-tool', 'opensc');
  const modulePath = findTpm2Pkcs11Module();
  if (modulePath === undefined) throw new Error(`expected the tpm2-pkcs11 module libtpm2_pkcs11.so, found none; install package libtpm2-pkcs11-1: ${SWTPM_INSTALL_COMMAND}`);

  const dir = await mkdtemp(join(tmpdir(), 'vsc-swtpm-'));
  const stateDir = join(dir, 'state');
  const storeDir = join(dir, 'store');
  let running: Running | undefined;
  try {
    await mkdir(stateDir);
    await mkdir(storeDir);
    let port = 0;
    let ctrlPort = 0;
    for (let attempt = 0; running === undefined; attempt++) {
      port = await freePortPair();
      ctrlPort = port + 1;
      const started = startSwtpm(stateDir, port, ctrlPort);
      if (await ready(started, port)) running = started;
      else if (attempt >= 3) throw new Error(`swtpm would not start: ${started.stderr.trim()}`);
    }
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    const env = Object.freeze({ TPM2_PKCS11_TCTI: tcti, TPM2_PKCS11_STORE: storeDir, TSS2_LOG: 'all+NONE', TPM2_PKCS11_LOG_LEVEL: '0' });
    await run('tpm2_dictionarylockout', ['--setup-parameters', '--max-tries=4294967295', '--recovery-time=0', '--lockout-recovery-time=0'], {
      env: { TPM2TOOLS_TCTI: tcti, TSS2_LOG: 'all+NONE' },
    });
    const token = { module: modulePath, env };
    await run('pkcs11-tool', ['--module', token.module, '--init-token', '--label', label, '--so-pin', soPin], { env });
    await run('pkcs11-tool', ['--module', token.module, '--token-label', label, '--login', '--login-type', 'so', '--so-pin', soPin, '--init-pin', '--new-pin', pin], { env });
    const pinFile = await writePinFile(dir, 'user.pin', pin);

    const restart = async (): Promise<void> => {
      await stopRunning(running);
      const started = startSwtpm(stateDir, port, ctrlPort);
      if (!(await ready(started, port))) throw new Error(`swtpm did not come back on port ${port}: ${started.stderr.trim()}`);
      running = started;
    };
    return Object.freeze({
      label,
      pin,
      pinFile,
      uri: dongleUri(label, modulePath, pinFile),
      modulePath,
      dir,
      env,
      uriWithPinFile: (path: string) => dongleUri(label, modulePath, path),
      stop: () => stopRunning(running),
      restart,
      pause: () => void running?.child.kill('SIGSTOP'),
      resume: () => void running?.child.kill('SIGCONT'),
      close: async () => {
        await stopRunning(running);
        await rm(dir, { recursive: true, force: true });
      },
    });
  } catch (error) {
    await stopRunning(running);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The TPM token as a dongle fixture: detach stops swtpm, reattach starts it again (the token comes back). */
export async function swtpmDongleFixture(name = 'tpm'): Promise<DongleFixture> {
  const tpm = await startSwtpmService({ label: name });
  return { name, uri: tpm.uri, env: tpm.env, detach: () => tpm.stop(), reattach: () => tpm.restart(), cleanup: () => tpm.close() };
}
