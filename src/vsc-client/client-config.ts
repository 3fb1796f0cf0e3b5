// What every server-backed card command needs: the server endpoint, the owner's password, this
// machine's MUK and its state directory (machine lock, control socket of the running card).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fromHex, utf8 } from '../bytes/index.js';
import { parseServerPublicKey } from '../channel/index.js';
import { UsageError } from '../errors/index.js';
import { computeMuk, mukFromOverride, readMachineFacts } from './muk.js';
import type { ServerEndpoint } from './server-operations.js';

export interface ClientFlags {
  readonly server?: string;
  readonly serverKey?: string;
  readonly masterKeyFile?: string;
  readonly keyfile?: string;
  readonly stateDir?: string;
  readonly machineId?: string;
}

export function stateDirectory(flags: ClientFlags): string {
  return resolve(flags.stateDir ?? process.env['VSC_STATE_DIR'] ?? join(homedir(), '.vsc'));
}

/** The name of this machine's lock ([0054], [0089]): one card process per machine (state directory). */
export const machineLockName = (stateDir: string): string => `vsc machine lock ${stateDir}`;

/** Abstract socket where the running card of `stateDir` takes `vsc card remove`. */
export function controlSocketPath(stateDir: string): string {
  return `\0vsc-card-control-${createHash('sha256').update(stateDir).digest('hex').slice(0, 40)}`;
}

export async function machineUniqueKey(flags: ClientFlags): Promise<Uint8Array> {
  const override = flags.machineId ?? process.env['VSC_MACHINE_ID'];
  return override !== undefined && override.length > 0 ? mukFromOverride(override) : computeMuk(await readMachineFacts());
}

export function serverEndpoint(flags: ClientFlags): ServerEndpoint {
  if (flags.server === undefined) throw new UsageError('--server is required (ws://HOST:PORT)');
  if (!/^wss?:\/\/[^\s]+$/.test(flags.server)) throw new UsageError(`--server: expected ws://HOST:PORT or wss://HOST:PORT, got ${JSON.stringify(flags.server)}`);
  if (flags.serverKey === undefined) throw new UsageError('--server-key is required (the 64 hex digits "vsc server init" printed)');
  let serverKey: Uint8Array;
  try {
    serverKey = parseServerPublicKey(flags.serverKey);
  } catch (error) {
    throw new UsageError(`--server-key: ${(error as Error).message}`);
  }
  const masterKeyFile = flags.masterKeyFile ?? process.env['VSC_MASTER_KEY_FILE'];
  if (masterKeyFile === undefined) throw new UsageError('--master-key-file (or VSC_MASTER_KEY_FILE) is required: the implementation key of this deployment');
  let text: string;
  try {
    text = readFileSync(masterKeyFile, 'utf8').trim();
  } catch (error) {
    throw new UsageError(`--master-key-file: cannot read ${masterKeyFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!/^[0-9a-f]{64}$/.test(text)) throw new UsageError(`--master-key-file: expected 64 hex digits in ${masterKeyFile}`);
  const keyfilePath = flags.keyfile ?? process.env['VSC_KEYFILE'];
  let keyfile: Uint8Array | undefined;
  if (keyfilePath !== undefined && keyfilePath !== '') {
    try {
      keyfile = new Uint8Array(readFileSync(keyfilePath));
    } catch (error) {
      throw new UsageError(`--keyfile: cannot read ${keyfilePath}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return {
    url: flags.server, serverKey, masterKey: fromHex(text), masterKeyFile: resolve(masterKeyFile),
    ...(keyfile === undefined ? {} : { keyfile, keyfilePath: resolve(keyfilePath!) }),
  };
}

/** The first line of --password-file, or a no-echo prompt on a terminal ([0019]). */
export async function readPassword(passwordFile: string | undefined, prompt = 'Card password: '): Promise<Uint8Array> {
  if (passwordFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(passwordFile, 'utf8');
    } catch (error) {
      throw new UsageError(`--password-file: cannot read ${passwordFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line.length === 0) throw new UsageError(`--password-file: ${passwordFile} has an empty first line`);
    return utf8(line);
  }
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password: use --password-file');
  return promptNoEcho(prompt);
}

function promptNoEcho(prompt: string): Promise<Uint8Array> {
  return new Promise((resolvePassword, reject) => {
    const input = process.stdin;
    process.stderr.write(prompt);
    input.setRawMode(true);
    input.resume();
    const chars: number[] = [];
    const finish = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (error !== undefined) reject(error);
      else resolvePassword(utf8(Buffer.from(chars).toString('utf8')));
      chars.fill(0);
    };
    const onData = (data: Buffer) => {
      for (const byte of data) {
        if (byte === 0x0d || byte === 0x0a) return finish();
        if (byte === 0x03) return finish(new UsageError('cancelled'));
        if (byte === 0x7f || byte === 0x08) chars.pop();
        else chars.push(byte);
      }
      data.fill(0);
    };
    input.on('data', onData);
  });
}
