// A card can always be given back (issue 13): a server-backed card inserted through the CLI is filled
// with certificates by yubico-piv-tool through real pcscd until PUT DATA answers 6A84, then the last gap
// is filled byte-exactly. That largest state the card accepts is removed (its sealed upload is exactly
// MAX_SEALED_BYTES, in one remove message), inserted again, and every object reads back byte for byte.
import { execFile } from 'node:child_process';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/bytes/index.js';
import { MAX_SEALED_BYTES } from '../../src/vsc-protocol/index.js';
import { E2E_INSTALL_COMMAND, SQLITE, readTables, startDeployment, waitForCard, type RunningCard, type ServerHarness } from '../support/index.js';

const READER = 'Virtual PCD 00 00';
const VPCD = ['--vpcd', '127.0.0.1:35963'];
const PASSWORD = 'capacity password';
/** Certificate containers of the retired key slots (SP 800-73-4 Part 1 table 3), written by id. */
const RETIRED_CERTIFICATES = Array.from({ length: 20 }, (_, i) => 0x5fc10d + i);
/** yubico-piv-tool 2.2 writes objects of up to 3063 bytes; these fill the card in a few steps. */
const OBJECT = 3000;

interface ToolRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** yubico-piv-tool on our reader with its default management key (the card's, DESIGN "The PIV applet"); never throws. */
function yubico(args: readonly string[]): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    execFile('yubico-piv-tool', ['-r', READER, ...args], { timeout: 30_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') reject(new Error(`yubico-piv-tool is not installed (${E2E_INSTALL_COMMAND})`));
      else resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe('the largest PIV state a server-backed card accepts', { timeout: 300_000 }, () => {
  let harness: ServerHarness;
  beforeAll(async () => {
    harness = await startDeployment(SQLITE, { port: 23_000 + (process.pid % 2000) });
  }, 60_000);
  afterEach(() => harness.killCards());
  afterAll(() => harness.close());

  const contentOf = (tag: number, length: number) => Uint8Array.from({ length }, (_, i) => (tag * 31 + i * 7) & 0xff);
  let files = 0;
  /** write-object of `length` bytes into container `tag`: true when stored, false when the card answered 6A84. */
  async function write(tag: number, length: number): Promise<boolean> {
    const input = join(harness.dir, `object-${files++}.bin`);
    await writeFile(input, contentOf(tag, length));
    const run = await yubico(['--verbose=2', '-a', 'write-object', '--id', String(tag), '-f', 'binary', '-i', input]);
    if (run.code === 0) return true;
    // --verbose=2 traces each response APDU; anything but 6A84 is a failure of the test, not a full card.
    expect(`${run.stdout}${run.stderr}`, 'a refusal other than 6A84').toMatch(/<\s*6a\s?84\b/i);
    return false;
  }
  async function read(tag: number): Promise<Uint8Array | undefined> {
    const output = join(harness.dir, `read-${files++}.bin`);
    const run = await yubico(['-a', 'read-object', '--id', String(tag), '-f', 'binary', '-o', output]);
    return run.code === 0 ? new Uint8Array(await readFile(output)) : undefined;
  }
  async function inserted(machineName: string): Promise<RunningCard> {
    const card = await harness.startInsert('BIG', PASSWORD, machineName, VPCD);
    if (card.child.exitCode !== null) throw new Error(`vsc card insert BIG exited ${card.child.exitCode}: ${(await card.exited).stderr}`);
    await waitForCard(READER, true);
    return card;
  }
  async function removed(card: RunningCard): Promise<void> {
    card.child.kill('SIGTERM');
    const end = await card.exited;
    expect(end.code, end.stderr).toBe(0);
    await waitForCard(READER, false);
  }

  it('fills to 6A84, is removed whole in one remove, and reads back byte for byte after the next insert', async () => {
    const enrolled = await harness.enroll('BIG', PASSWORD);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const card = await inserted('A');

    const written = new Map<number, number>();
    const tags = RETIRED_CERTIFICATES.values();
    let tag = tags.next().value!;
    while (await write(tag, OBJECT)) {
      written.set(tag, OBJECT);
      tag = tags.next().value!;
      expect(tag, 'the card took every container without 6A84').toBeDefined();
    }
    // The first refusal changed nothing, and the gap left is smaller than one object: find its exact size.
    expect(await read(tag)).toBeUndefined();
    let [fits, refused] = [0, OBJECT];
    while (refused - fits > 1) {
      const middle = Math.floor((fits + refused) / 2);
      if (await write(tag, middle)) fits = middle;
      else refused = middle;
    }
    // The gap may be smaller than one object's own overhead (the certificates' DER sizes vary by a
    // byte or two between cards): then no object fits in it at all, and the card is already full.
    if (fits > 0) {
      expect(await write(tag, fits)).toBe(true);
      written.set(tag, fits);
    }
    // Full to the byte: one more byte anywhere is refused.
    expect(await write(tag, fits + 1)).toBe(false);
    expect(await write(RETIRED_CERTIFICATES.at(-1)!, 1)).toBe(false);

    await removed(card);
    expect(await harness.state('BIG')).toBe('idle');
    const row = (await readTables(harness)).get('cards')!.find((entry) => entry['serial'] === 'BIG')!;
    const sealedLength = (row['sealed'] as Buffer).length;
    expect(sealedLength, 'the sealed upload of the largest state').toBeLessThanOrEqual(MAX_SEALED_BYTES);
    if (fits > 0) expect(sealedLength, 'filled to the byte').toBe(MAX_SEALED_BYTES);
    else expect(sealedLength, 'short of the limit by less than one object\'s overhead').toBeGreaterThan(MAX_SEALED_BYTES - 16);

    const again = await inserted('B');
    for (const [objectTag, length] of written) {
      const content = await read(objectTag);
      expect(content, `object ${objectTag.toString(16)}`).toBeDefined();
      expect(toHex(content!)).toBe(toHex(contentOf(objectTag, length)));
    }
    await removed(again);
  });
});
