// The rental server's journal (patent 003 [0062]; the issue: "journals a SIGN AND INCREMENT before sending it and
// replays after a crash, so a crash between sign and append leaves no hole"): the file itself (one entry, 0600, cut
// lines ignored, anything else refused), and each state a crash can leave, built here exactly as the crash leaves it
// (the real card signs, the real files are written), then a server started on it. The kill -9 of a real server at
// each crash point is test/e2e/rental-server-crash.test.ts.
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import { ExposedFileError } from '../../src/files/index.js';
import {
  checkTrail, encodeRecordLine, MAX_LINE_LENGTH, parseJournal, recordHash, RentalClient, RentalError, RentalJournal, RentalServer, TrailFile,
  type AuditRecord, type JournalIntent, type RentalReason,
} from '../../src/rental/index.js';
import { inProcessRentalCard, rentalTempDir, startRentalServer, type InProcessRentalCard } from '../support/rental-server-fixture.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = rentalTempDir('vsc-rental-journal-');
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const nonce = () => Uint8Array.from(randomBytes(16));

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

async function refusal(promise: Promise<unknown>, reason: RentalReason): Promise<RentalError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(RentalError);
  expect((error as RentalError).reason).toBe(reason);
  return error as RentalError;
}

/** A trail of `count` records written through a server, which is then stopped: the state before the "crash". */
async function trailOf(card: InProcessRentalCard, count: number, backup?: string): Promise<{ dir: string; records: AuditRecord[] }> {
  const dir = tempDir();
  const running = await startRentalServer({ access: card.access, directory: dir, ...(backup === undefined ? {} : { backupDirectory: backup }) });
  const client = await RentalClient.connect(running.socketPath);
  const records: AuditRecord[] = [];
  for (let i = 0; i < count; i++) records.push((await client.write(nonce(), `before crash ${i}`)).record);
  client.close();
  await running.stop();
  return { dir, records };
}

/** What the server does up to its SIGN AND INCREMENT, through another connection to the same card. */
async function signAsServer(card: InProcessRentalCard, intent: JournalIntent): Promise<AuditRecord> {
  const { client } = await card.other();
  const answer = await client.signAndIncrement(recordHash(intent.nonce, intent.text));
  expect(answer.counter).toBe(intent.counter);
  return { ...intent, signature: answer.signature };
}

async function validTrail(card: InProcessRentalCard, path: string) {
  const records = new TrailFile(path).readAll();
  return checkTrail({ trustRoot: card.trustRoot, offset: 0n, records: new TrailFile(path).recordBatches(), ours: records[records.length - 1]!, verifiers: null });
}

describe('the journal file', () => {
  it('holds one entry: intent, then the card\'s answer; 0600; read back as written; cleared to empty', () => {
    const dir = tempDir();
    const journal = RentalJournal.open(dir);
    expect(statSync(journal.path).mode & 0o777).toBe(0o600);
    expect(journal.state).toBe('empty');
    const intent = { nonce: nonce(), text: 'WP 15 minutes', counter: 340282366920938463463374607431768211454n };
    journal.recordIntent(intent);
    expect(RentalJournal.open(dir).entry).toEqual({ state: 'intent', intent });
    const record = { ...intent, signature: Uint8Array.from(randomBytes(64)) };
    journal.recordAnswer(record);
    expect(RentalJournal.open(dir).entry).toEqual({ state: 'answered', intent, record });
    expect(readFileSync(journal.path, 'utf8').split('\n')).toHaveLength(3);
    journal.clear();
    expect(readFileSync(journal.path)).toHaveLength(0);
    expect(RentalJournal.open(dir).state).toBe('empty');
    // An answer for another counter than the intent's is refused, the file unchanged.
    journal.recordIntent(intent);
    expect(thrownBy(() => journal.recordAnswer({ ...record, counter: 1n }))).toBeInstanceOf(RentalError);
    expect(RentalJournal.open(dir).state).toBe('intent');
    journal.close();
  });

  it('refuses a journal others can read (ExposedFileError)', () => {
    const dir = tempDir();
    RentalJournal.open(dir).close();
    chmodSync(join(dir, 'journal'), 0o644);
    expect(thrownBy(() => RentalJournal.open(dir))).toBeInstanceOf(ExposedFileError);
  });

  it('ignores a line cut by a crash (never fsynced) and refuses anything the server did not write (malformed)', () => {
    const intent = { nonce: new Uint8Array(16).fill(1), text: 'x', counter: 5n };
    const intentLine = `{"kind":"intent","nonce":"${'01'.repeat(16)}","text":"x","counter":"5"}`;
    const answerLine = `{"kind":"answer","counter":"5","signature":"${'ab'.repeat(64)}"}`;
    expect(parseJournal(utf8(''))).toBeUndefined();
    expect(parseJournal(utf8(intentLine.slice(0, 20)))).toBeUndefined();
    expect(parseJournal(utf8(intentLine))).toBeUndefined();
    expect(parseJournal(utf8(`${intentLine}\n`))).toEqual({ state: 'intent', intent });
    expect(parseJournal(utf8(`${intentLine}\n${answerLine.slice(0, 40)}`))).toEqual({ state: 'intent', intent });
    expect(parseJournal(utf8(`${intentLine}\n${answerLine}\n`))?.state).toBe('answered');
    const bad = [
      `${answerLine}\n`, `${intentLine}\n${intentLine}\n`, `${intentLine}\n${answerLine.replace('"5"', '"6"')}\n`, `${intentLine}\n${answerLine}\n${answerLine}\n`,
      `${intentLine.replace('"x"', '"\\ud800"')}\n`, `${intentLine.replace('"5"', '"05"')}\n`, `${intentLine.replace('}', ',"extra":1}')}\n`, '[]\n', '\n',
    ];
    for (const text of bad) {
      const error = thrownBy(() => parseJournal(utf8(text)));
      expect(error, text).toBeInstanceOf(RentalError);
      expect((error as RentalError).reason).toBe('malformed');
    }
    expect((thrownBy(() => parseJournal(Uint8Array.of(0xff, 0x0a))) as RentalError).reason).toBe('malformed');
  });

  it('fuzz: random and mutated bytes give an entry, nothing, or RentalError malformed, never anything else', () => {
    const valid = utf8(`{"kind":"intent","nonce":"${'01'.repeat(16)}","text":"x","counter":"5"}\n{"kind":"answer","counter":"5","signature":"${'ab'.repeat(64)}"}\n`);
    const check = (bytes: Uint8Array) => {
      try {
        const entry = parseJournal(bytes);
        if (entry !== undefined) expect(['intent', 'answered']).toContain(entry.state);
      } catch (error) {
        expect(error).toBeInstanceOf(RentalError);
        expect((error as RentalError).reason).toBe('malformed');
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => check(bytes)), { numRuns: 500 });
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
      const bytes = valid.slice();
      for (const [at, value] of edits) bytes[at] = value;
      check(bytes);
    }), { numRuns: 1000 });
  });
});

describe('after a crash, before serving ([0062])', () => {
  it('an intent the card never signed is dropped: its program was never told it was written', async () => {
    const card = await inProcessRentalCard();
    const { dir, records } = await trailOf(card, 2);
    const journal = RentalJournal.open(dir);
    journal.recordIntent({ nonce: nonce(), text: 'never signed', counter: 2n });
    journal.close();
    const server = await RentalServer.open({ card: card.access, directory: dir });
    await server.close();
    expect(new TrailFile(join(dir, 'trail.jsonl')).readAll()).toEqual(records);
    expect(RentalJournal.open(dir).state).toBe('empty');
    expect(card.card.counter()).toBe(2n);
  });

  it('an intent the card signed but whose answer was lost (crash after SIGN AND INCREMENT) becomes the bridge "skipped E E", and the trail validates', async () => {
    const card = await inProcessRentalCard();
    const { dir } = await trailOf(card, 3);
    const journal = RentalJournal.open(dir);
    const intent = { nonce: nonce(), text: 'signature lost', counter: 3n };
    journal.recordIntent(intent);
    journal.close();
    await signAsServer(card, intent);
    const logs: string[] = [];
    const server = await RentalServer.open({ card: card.access, directory: dir, log: (line) => logs.push(line) });
    await server.close();
    expect(logs.join('\n')).toMatch(/signed counter 3 but the signature was lost .* "skipped 3 3" at counter 4/);
    const trail = new TrailFile(join(dir, 'trail.jsonl')).readAll();
    expect(trail.map((record) => [record.counter, record.text])).toEqual([[0n, 'before crash 0'], [1n, 'before crash 1'], [2n, 'before crash 2'], [4n, 'skipped 3 3']]);
    expect((await validTrail(card, join(dir, 'trail.jsonl'))).bridged).toEqual([{ from: 3n, to: 3n }]);
    expect(card.card.counter()).toBe(5n);
  });

  it('a bridge the server died before signing is written again', async () => {
    const card = await inProcessRentalCard();
    const { dir } = await trailOf(card, 1);
    await signAsServer(card, { nonce: nonce(), text: 'lost', counter: 1n });
    const journal = RentalJournal.open(dir);
    journal.recordIntent({ nonce: nonce(), text: 'skipped 1 1', counter: 2n });
    journal.close();
    const server = await RentalServer.open({ card: card.access, directory: dir });
    await server.close();
    expect(new TrailFile(join(dir, 'trail.jsonl')).readAll().map((record) => record.text)).toEqual(['before crash 0', 'skipped 1 1']);
    expect((await validTrail(card, join(dir, 'trail.jsonl'))).bridged).toEqual([{ from: 1n, to: 1n }]);
  });

  it('an answered record missing from the trail and its backup is replayed into both', async () => {
    const card = await inProcessRentalCard();
    const backup = tempDir();
    const { dir } = await trailOf(card, 2, backup);
    const journal = RentalJournal.open(dir);
    const intent = { nonce: nonce(), text: 'answered, not appended', counter: 2n };
    journal.recordIntent(intent);
    const record = await signAsServer(card, intent);
    journal.recordAnswer(record);
    journal.close();
    const logs: string[] = [];
    const server = await RentalServer.open({ card: card.access, directory: dir, backupDirectory: backup, log: (line) => logs.push(line) });
    await server.close();
    expect(logs.join('\n')).toMatch(/replayed the record for counter 2/);
    for (const path of [join(dir, 'trail.jsonl'), join(backup, 'trail.jsonl')]) expect(new TrailFile(path).readAll().at(-1)).toEqual(record);
    expect(RentalJournal.open(dir).state).toBe('empty');
  });

  it('a record in the primary but not the backup (crash between the appends) reaches the backup', async () => {
    const card = await inProcessRentalCard();
    const backup = tempDir();
    const { dir } = await trailOf(card, 1, backup);
    const journal = RentalJournal.open(dir);
    const intent = { nonce: nonce(), text: 'primary only', counter: 1n };
    journal.recordIntent(intent);
    const record = await signAsServer(card, intent);
    journal.recordAnswer(record);
    journal.close();
    new TrailFile(join(dir, 'trail.jsonl')).append(record);
    const server = await RentalServer.open({ card: card.access, directory: dir, backupDirectory: backup });
    await server.close();
    expect(readFileSync(join(backup, 'trail.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'trail.jsonl'), 'utf8'));
    expect(new TrailFile(join(dir, 'trail.jsonl')).readAll()).toHaveLength(2);
  });

  it('a last line torn by the crash is cut when it is a piece of the journaled record, which is then replayed', async () => {
    const card = await inProcessRentalCard();
    const { dir } = await trailOf(card, 2);
    const journal = RentalJournal.open(dir);
    const intent = { nonce: nonce(), text: 'torn in the middle', counter: 2n };
    journal.recordIntent(intent);
    const record = await signAsServer(card, intent);
    journal.recordAnswer(record);
    journal.close();
    const line = encodeRecordLine(record);
    appendFileSync(join(dir, 'trail.jsonl'), line.slice(0, 60));
    const logs: string[] = [];
    const server = await RentalServer.open({ card: card.access, directory: dir, log: (l) => logs.push(l) });
    await server.close();
    expect(logs.join('\n')).toMatch(/cut the torn last line .*60 bytes of the record for counter 2/);
    expect(new TrailFile(join(dir, 'trail.jsonl')).readAll().at(-1)).toEqual(record);
    await expect(validTrail(card, join(dir, 'trail.jsonl'))).resolves.toMatchObject({ records: 3 });
  });

  it('a cut tail longer than any record line is no torn append: refused (malformed), the file unchanged', async () => {
    const card = await inProcessRentalCard();
    const { dir } = await trailOf(card, 1);
    appendFileSync(join(dir, 'trail.jsonl'), 'x'.repeat(MAX_LINE_LENGTH + 10));
    const before = readFileSync(join(dir, 'trail.jsonl'));
    await refusal(RentalServer.open({ card: card.access, directory: dir }), 'malformed');
    expect(readFileSync(join(dir, 'trail.jsonl'))).toEqual(before);
  });

  it('an intent whose counter the card passed by more than one is cleared and the whole range reported as a gap', async () => {
    const card = await inProcessRentalCard();
    const { dir } = await trailOf(card, 1);
    const journal = RentalJournal.open(dir);
    const intent = { nonce: nonce(), text: 'lost, then more signed outside', counter: 1n };
    journal.recordIntent(intent);
    journal.close();
    await signAsServer(card, intent);
    await (await card.other()).client.signAndIncrement(new Uint8Array(32));
    const logs: string[] = [];
    const server = await RentalServer.open({ card: card.access, directory: dir, log: (line) => logs.push(line) });
    expect((await server.status()).gap).toEqual({ from: 1n, to: 2n });
    await server.close();
    expect(logs.join('\n')).toMatch(/counters 1\.\.2 carry no record/);
    expect(new TrailFile(join(dir, 'trail.jsonl')).readAll()).toHaveLength(1);
  });

  it('a journal intent above the card\'s counter is a rolled-back card: refused', async () => {
    const card = await inProcessRentalCard();
    const { dir } = await trailOf(card, 1);
    const journal = RentalJournal.open(dir);
    journal.recordIntent({ nonce: nonce(), text: 'x', counter: 7n });
    journal.close();
    await refusal(RentalServer.open({ card: card.access, directory: dir }), 'rollback');
  });
});

describe('a trail lost while the server runs', () => {
  it('the Write is refused (storage), nothing more is written; at restart the backup restores the trail and the journal replays the record', async () => {
    const card = await inProcessRentalCard();
    const [dir, backup] = [tempDir(), tempDir()];
    let running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    let client = await RentalClient.connect(running.socketPath);
    await client.write(nonce(), 'kept');
    rmSync(join(dir, 'trail.jsonl'));
    await refusal(client.write(nonce(), 'signed, not kept yet'), 'storage');
    await refusal(client.write(nonce(), 'refused'), 'storage');
    expect(card.card.counter()).toBe(2n);
    expect((await client.status()).journal).toBe('answered');
    client.close();
    await running.stop();
    running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    client = await RentalClient.connect(running.socketPath);
    expect(new TrailFile(join(dir, 'trail.jsonl')).readAll().map((record) => record.text)).toEqual(['kept', 'signed, not kept yet']);
    expect((await client.write(nonce(), 'after')).record.counter).toBe(2n);
    client.close();
    await running.stop();
    expect(readFileSync(join(backup, 'trail.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'trail.jsonl'), 'utf8'));
  });
});
