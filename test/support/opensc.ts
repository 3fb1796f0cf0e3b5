// End-to-end helpers around OpenSC's opensc-tool: send APDUs through pcscd, list readers, wait for a card.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeCommandApdu, type CommandApdu } from '../../src/apdu/index.js';
import { fromHex, toHex } from '../../src/bytes/index.js';

/** Everything the end-to-end tests drive, as one Debian 12 command (README and .ci/run carry the same packages). */
export const E2E_INSTALL_COMMAND = 'apt-get install -y pcscd vsmartcard-vpcd opensc pcsc-tools yubico-piv-tool softhsm2 swtpm libtpm2-pkcs11-1 tpm2-tools openssl iproute2 postgresql libpcsclite-dev g++ make python3';

export interface ToolOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program without a shell; rejects with its exit status and output when it fails or times out. */
export function runTool(file: string, args: readonly string[], timeoutMs = 15_000): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ stdout, stderr });
        return;
      }
      const errno = (error as NodeJS.ErrnoException).code;
      const why =
        errno === 'ENOENT'
          ? `${file} is not installed (${E2E_INSTALL_COMMAND})`
          : error.killed
            ? `timed out after ${timeoutMs} ms`
            : `exit code ${String(error.code ?? error.signal)}`;
      const output = [stderr.trim(), stdout.trim()].filter((text) => text.length > 0).join('\n');
      reject(new Error(`${file} ${args.join(' ')}: ${why}${output.length > 0 ? `\n${output}` : ''}`, { cause: error }));
    });
  });
}

/** A command APDU built by the card client's builders, as the hex `opensc-tool -s` takes. */
export function commandHex(command: CommandApdu): string {
  return toHex(encodeCommandApdu(command));
}

/** One response APDU as opensc-tool printed it. */
export interface ApduResult {
  readonly data: Uint8Array;
  readonly sw: number;
}

/**
 * Parses the output of `opensc-tool -s ...`: for each APDU a "Received (SW1=0x90, SW2=0x00)" line,
 * with a colon when data follows as hex-dump lines of n bytes: "XX " n times, then n ASCII characters.
 */
export function parseOpenscApduOutput(stdout: string): ApduResult[] {
  const results: { data: number[]; sw: number }[] = [];
  let current: { data: number[]; sw: number } | undefined;
  for (const line of stdout.split('\n')) {
    const received = /^Received \(SW1=0x([0-9A-Fa-f]{2}), SW2=0x([0-9A-Fa-f]{2})\)(:?)$/.exec(line);
    if (received !== null) {
      current = { data: [], sw: parseInt(received[1]! + received[2]!, 16) };
      results.push(current);
      if (received[3] === '') current = undefined;
      continue;
    }
    if (line.startsWith('Sending:') || line.length === 0) {
      current = undefined;
      continue;
    }
    if (current === undefined) continue;
    // Never trim: the ASCII column may end with a space. A line is a hex column of "XX " per byte followed by
    // one ASCII character per byte; OpenSC pads a short last line's hex column to 48 characters, except when
    // the whole answer fits one line (then the ASCII column follows the hex at once: 4 characters a byte).
    const padded = line.length - 48;
    const count = padded >= 1 && padded <= 16 && line.slice(3 * padded, 48).trim() === '' ? padded : line.length % 4 === 0 ? line.length / 4 : 0;
    const hex = line.slice(0, 3 * count);
    if (count < 1 || count > 16 || !/^(?:[0-9A-Fa-f]{2} )+$/.test(hex)) {
      throw new Error(`expected an opensc-tool hex dump line ("XX XX ... ascii"), got ${JSON.stringify(line)}`);
    }
    current.data.push(...fromHex(hex));
  }
  return results.map(({ data, sw }) => Object.freeze({ data: Uint8Array.from(data), sw }));
}

/**
 * Sends APDUs (hex, spaces allowed) to a reader in one card session, so a SELECT holds for the
 * commands after it. `-c default` keeps OpenSC from probing its card drivers first.
 */
export async function sendApdus(reader: string, apdus: readonly string[], timeoutMs = 30_000): Promise<ApduResult[]> {
  const args = ['-c', 'default', '-r', reader, ...apdus.flatMap((apdu) => ['-s', apdu])];
  const { stdout } = await runTool('opensc-tool', args, timeoutMs);
  const results = parseOpenscApduOutput(stdout);
  if (results.length !== apdus.length) {
    throw new Error(`expected ${apdus.length} responses from opensc-tool, got ${results.length}:\n${stdout}`);
  }
  return results;
}

export interface ReaderState {
  readonly name: string;
  /** undefined when opensc-tool shows "?" (state unknown). */
  readonly cardPresent: boolean | undefined;
}

/** Parses `opensc-tool -l`: a header "Nr.  Card  Features  Name", then one row per reader. */
export function parseReaderList(stdout: string): ReaderState[] {
  const lines = stdout.split('\n');
  const header = lines.findIndex((line) => /^Nr\.\s+Card\s+Features\s+Name/.test(line));
  if (header < 0) return []; // "No smart card readers found."
  const nameColumn = lines[header]!.indexOf('Name');
  const readers: ReaderState[] = [];
  for (const line of lines.slice(header + 1)) {
    const row = /^(\d+)\s+(Yes|No|\?)\s/.exec(line);
    if (row === null) continue;
    const card = row[2];
    readers.push(Object.freeze({ name: line.slice(nameColumn).trim(), cardPresent: card === '?' ? undefined : card === 'Yes' }));
  }
  return readers;
}

export async function listReaders(timeoutMs = 15_000): Promise<ReaderState[]> {
  const { stdout } = await runTool('opensc-tool', ['-l'], timeoutMs);
  return parseReaderList(stdout);
}

/** Polls `opensc-tool -l` until `reader` shows a card (present = true) or shows empty (present = false). */
export async function waitForCard(reader: string, present: boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ReaderState[] = [];
  for (;;) {
    try {
      last = await listReaders(Math.max(1_000, deadline - Date.now()));
      if (last.find((state) => state.name === reader)?.cardPresent === present) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) {
      const seen = last.map((state) => `${state.name}: ${state.cardPresent === undefined ? '?' : state.cardPresent ? 'card' : 'empty'}`).join(', ');
      throw new Error(`expected reader "${reader}" to ${present ? 'show a card' : 'be empty'} within ${timeoutMs} ms, got [${seen || 'no readers'}]`);
    }
    // pcscd itself polls vpcd for a card every 400 ms; a short interval here adds little to that.
    await sleep(50);
  }
}
