// The pcscd the end-to-end tests and benchmarks drive: checks that pcscd, vpcd, OpenSC, SoftHSM2 and openssl are
// installed, and makes sure a pcscd with the vpcd readers runs (reusing one that already answers, else starting its own).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listReaders, runTool, type ReaderState } from './opensc.js';
import { E2E_INSTALL_COMMAND, findOpenscModule, findSoftHsmModule } from './pkcs11.js';

const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';
const VPCD_READER_CONF = '/etc/reader.conf.d/vpcd';
const VPCD_READER = 'Virtual PCD';
const READY_TIMEOUT_MS = 20_000;

let pcscd: ChildProcess | undefined;

/** Finds an executable on PATH or in the sbin folders (pcscd lives in /usr/sbin, often off a user's PATH). */
function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs.filter((entry) => entry.length > 0)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

function isReadable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function vpcdReaders(): Promise<ReaderState[] | undefined> {
  try {
    const readers = await listReaders(5_000);
    const vpcd = readers.filter((reader) => reader.name.startsWith(VPCD_READER));
    return vpcd.length > 0 ? vpcd : undefined;
  } catch {
    return undefined; // no pcscd answering ("Service not available")
  }
}

async function runningPcscdPids(): Promise<string[]> {
  try {
    const { stdout } = await runTool('pgrep', ['-x', 'pcscd'], 5_000);
    return stdout.split('\n').filter((line) => line.trim().length > 0);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** Checks the tools and makes sure a pcscd with the vpcd readers answers; throws naming the install command when one is missing. */
export async function ensurePcscd(): Promise<void> {
  const missing: string[] = [];
  const pcscdPath = findExecutable('pcscd');
  if (pcscdPath === undefined) missing.push('pcscd (package pcscd)');
  if (findExecutable('opensc-tool') === undefined) missing.push('opensc-tool (package opensc)');
  if (findExecutable('pcsc_scan') === undefined) missing.push('pcsc_scan (package pcsc-tools)');
  if (!isReadable(VPCD_DRIVER)) missing.push(`${VPCD_DRIVER} (package vsmartcard-vpcd)`);
  if (!isReadable(VPCD_READER_CONF)) missing.push(`${VPCD_READER_CONF} (package vsmartcard-vpcd)`);
  // The PIV tests: PKCS#11 through OpenSC's module and SoftHSM2's, piv-tool for the card's admin side, openssl to verify.
  for (const [tool, pkg] of [['pkcs11-tool', 'opensc'], ['piv-tool', 'opensc'], ['yubico-piv-tool', 'yubico-piv-tool'], ['softhsm2-util', 'softhsm2'], ['openssl', 'openssl']] as const) {
    if (findExecutable(tool) === undefined) missing.push(`${tool} (package ${pkg})`);
  }
  if (findOpenscModule() === undefined) missing.push('opensc-pkcs11.so (package opensc-pkcs11)');
  if (findSoftHsmModule() === undefined) missing.push('libsofthsm2.so (package softhsm2)');
  if (missing.length > 0 || pcscdPath === undefined) {
    throw new Error(`the end-to-end tests need real pcscd, vpcd, OpenSC, SoftHSM2 and openssl; missing: ${missing.join(', ')}. Install them with: ${E2E_INSTALL_COMMAND}`);
  }

  const existing = await vpcdReaders();
  if (existing !== undefined) {
    const pids = await runningPcscdPids();
    console.log(
      `e2e: reusing the running pcscd (pid ${pids.join(', ') || '?'}), readers: ${existing.map((reader) => reader.name).join(', ')}; ` +
        'its output goes wherever its owner sent it (syslog, or the terminal of `pcscd --foreground`)',
    );
    return;
  }
  const pids = await runningPcscdPids();
  if (pids.length > 0) {
    throw new Error(
      `expected the running pcscd (pid ${pids.join(', ')}) to list the "${VPCD_READER}" readers, got none from opensc-tool -l; ` +
        `check ${VPCD_READER_CONF} and restart pcscd, or stop it so the tests can start their own`,
    );
  }

  const logPath = join(tmpdir(), `vsc-e2e-pcscd-${process.pid}.log`);
  const log = openSync(logPath, 'w');
  const child = spawn(pcscdPath, ['--foreground', '--info'], { stdio: ['ignore', log, log] });
  closeSync(log);
  pcscd = child;
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  child.once('error', (error) => (exited = `could not start: ${error.message}`));
  console.log(`e2e: started pcscd --foreground (pid ${child.pid ?? '?'}); its output goes to ${logPath}`);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited !== undefined) {
      pcscd = undefined;
      throw new Error(`expected pcscd to keep running, but it ${exited}; last lines of ${logPath}:\n${tail(logPath)}`);
    }
    const readers = await vpcdReaders();
    if (readers !== undefined) {
      console.log(`e2e: pcscd ready, readers: ${readers.map((reader) => reader.name).join(', ')}`);
      return;
    }
    if (Date.now() > deadline) {
      await stopPcscd();
      throw new Error(`expected pcscd to list the "${VPCD_READER}" readers within ${READY_TIMEOUT_MS} ms, got none; see ${logPath}:\n${tail(logPath)}`);
    }
    await sleep(250);
  }
}

/** Stops the pcscd that ensurePcscd started; a reused one is left alone. */
export async function stopPcscd(): Promise<void> {
  const child = pcscd;
  pcscd = undefined;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const stopped = await Promise.race([exit.then(() => true), sleep(5_000).then(() => false)]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exit;
  }
  console.log('e2e: stopped the pcscd the tests had started');
}
