// The rental server with an in-process card (patent 003 [0046], [0058], [0062]): Writes from many connections run
// one at a time, each record fsynced to the trail (and its backup) before it is acknowledged; bad input changes
// nothing; the trail and its backup are made one again at startup or refused; a gap the server did not cause is
// reported and bridged only on request; the programs' own checks (program-trail.ts) pass over the real client.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesEqual } from '../../src/bytes/index.js';
import {
  checkTrail, encodeRecordLine, prepareRentalSocketPath, recordHash, RentalClient, RentalError, RentalServer, rentalSocketPath, TrailFile, validateThroughServer, verifyRecord,
  writeThroughServer,
  type AuditRecord, type RentalReason,
} from '../../src/rental/index.js';
import { inProcessRentalCard, rentalTempDir, startRentalServer } from '../support/rental-server-fixture.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = rentalTempDir();
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const nonce = () => Uint8Array.from(randomBytes(16));

async function refusal(promise: Promise<unknown>, reason: RentalReason): Promise<RentalError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error, `expected a refusal with reason ${reason}`).toBeInstanceOf(RentalError);
  expect((error as RentalError).reason).toBe(reason);
  return error as RentalError;
}

async function trailRecords(path: string): Promise<AuditRecord[]> {
  return new TrailFile(path).readAll();
}

/** One raw exchange on the socket: the lines sent, the answer lines until `count` arrived or the server closed. */
function rawExchange(socketPath: string, payload: Uint8Array | string, count: number): Promise<{ lines: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ lines: text.split('\n').filter((line) => line.length > 0), closed });
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.split('\n').length - 1 >= count) setTimeout(() => finish(false), 50);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', reject);
    socket.write(payload);
  });
}

describe('Write through the rental server ([0058], [0059] steps [3], [4], [9])', () => {
  it('hello names the card and the trail; a write is signed at the card\'s counter, fsynced to the trail, then answered', async () => {
    const card = await inProcessRentalCard({ counter: 41n });
    const dir = tempDir();
    const running = await startRentalServer({ access: card.access, directory: dir });
    const client = await RentalClient.connect(running.socketPath);
    try {
      const hello = await client.hello();
      expect(hello).toMatchObject({ protocol: 1, card: { serial: card.trustRoot.serial, keyMode: 'individual' }, trail: join(dir, 'trail.jsonl'), counter: 41n });
      expect(bytesEqual(hello.card.publicKey, card.trustRoot.publicKey)).toBe(true);
      const n = nonce();
      const { record, counterAfter } = await client.write(n, 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3');
      expect(record.counter).toBe(41n);
      expect(counterAfter).toBe(42n);
      expect(bytesEqual(record.nonce, n)).toBe(true);
      expect(verifyRecord(record, card.trustRoot)).toBe(true);
      expect(readFileSync(hello.trail, 'utf8')).toBe(`${encodeRecordLine(record)}\n`);
      expect(statSync(hello.trail).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'journal')).mode & 0o777).toBe(0o600);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(running.socketPath).mode & 0o777).toBe(0o600);
      expect(await client.counter()).toBe(42n);
      expect(await client.status()).toMatchObject({ counter: 42n, trail: { lastCounter: 41n, records: 1 }, backup: null, journal: 'empty', gap: null });
    } finally {
      client.close();
      await running.stop();
    }
  });

  it('with expectCounter signs only at that counter: counter-moved signs nothing and appends nothing', async () => {
    const card = await inProcessRentalCard({ counter: 5n });
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    const client = await RentalClient.connect(running.socketPath);
    try {
      await refusal(client.write(nonce(), 'x', 4n), 'counter-moved');
      await refusal(client.write(nonce(), 'x', 6n), 'counter-moved');
      expect(card.card.counter()).toBe(5n);
      expect(await trailRecords(running.server.trailPath)).toEqual([]);
      expect((await client.write(nonce(), 'x', 5n)).record.counter).toBe(5n);
    } finally {
      client.close();
      await running.stop();
    }
  });

  it('[0058] many connections writing at once: every counter signed once, the trail consecutive, every acknowledged record in it', async () => {
    const card = await inProcessRentalCard({ counter: 1000n });
    const running = await startRentalServer({ access: card.access, directory: tempDir(), backupDirectory: tempDir() });
    const clients = await Promise.all(Array.from({ length: 16 }, () => RentalClient.connect(running.socketPath)));
    try {
      const acks = (await Promise.all(clients.map((client, c) => Promise.all(Array.from({ length: 12 }, (_, i) => client.write(nonce(), `prog${c} execution #${i}`)))))).flat();
      const counters = acks.map((ack) => ack.record.counter).sort((a, b) => (a < b ? -1 : 1));
      expect(counters).toEqual(Array.from({ length: 16 * 12 }, (_, i) => 1000n + BigInt(i)));
      const trail = await trailRecords(running.server.trailPath);
      expect(trail.map((record) => record.counter)).toEqual(counters);
      const lines = new Set(trail.map(encodeRecordLine));
      for (const ack of acks) expect(lines.has(encodeRecordLine(ack.record))).toBe(true);
      expect(readFileSync(running.server.backupPath!, 'utf8')).toBe(readFileSync(running.server.trailPath, 'utf8'));
      const last = trail[trail.length - 1]!;
      await expect(checkTrail({ trustRoot: card.trustRoot, offset: 1000n, records: new TrailFile(running.server.trailPath).recordBatches(), ours: last, verifiers: null })).resolves.toMatchObject({ records: 16 * 12 });
    } finally {
      for (const client of clients) client.close();
      await running.stop();
    }
  });

  it('a rented program\'s Write and ValidateTrail (program-trail.ts) pass over the client: [0060] Write(c) at exactly c', async () => {
    const card = await inProcessRentalCard({ counter: 9n });
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    const client = await RentalClient.connect(running.socketPath);
    try {
      await writeThroughServer(client, 'WP execution public key 9828a8c12a5873654bac684517d3afe3', card.trustRoot);
      const trail = new TrailFile(running.server.trailPath);
      const validation = await validateThroughServer({ link: client, trustRoot: card.trustRoot, offset: 9n, text: (c) => `${c}`, records: () => trail.recordBatches() });
      expect(validation).toMatchObject({ valid: true, records: 2, lastCounter: 10n });
    } finally {
      client.close();
      await running.stop();
    }
  });
});

describe('bad input over the socket changes nothing (trail and card counter unchanged)', () => {
  it('answers each bad line with reason input, keeps the connection, and closes it only after an oversized line', async () => {
    const card = await inProcessRentalCard({ counter: 3n });
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    const client = await RentalClient.connect(running.socketPath);
    await client.write(nonce(), 'before');
    const trailBefore = readFileSync(running.server.trailPath);
    try {
      const bad = [
        'not json', '[]', '{}', '{"id":-1,"op":"hello"}', '{"id":2147483648,"op":"hello"}', '{"id":1.5,"op":"hello"}', '{"id":"1","op":"hello"}',
        '{"id":1,"op":"sign"}', '{"id":1,"op":"hello","extra":1}', '{"id":1,"op":"write","nonce":"00","text":"x"}',
        `{"id":1,"op":"write","nonce":"${'A'.repeat(32)}","text":"x"}`, `{"id":1,"op":"write","nonce":"${'0'.repeat(32)}","text":"\\ud800"}`,
        `{"id":1,"op":"write","nonce":"${'0'.repeat(32)}","text":"x","expectCounter":"04"}`, `{"id":1,"op":"write","nonce":"${'0'.repeat(32)}","text":"x","expectCounter":4}`,
        `{"id":1,"op":"write","nonce":"${'0'.repeat(32)}"}`, '{"id":1,"op":"write","text":"x"}', '',
      ];
      const { lines, closed } = await rawExchange(running.socketPath, `${bad.join('\n')}\n{"id":7,"op":"counter"}\n`, bad.length + 1);
      expect(closed).toBe(false);
      expect(lines).toHaveLength(bad.length + 1);
      for (const line of lines.slice(0, -1)) expect(JSON.parse(line)).toMatchObject({ ok: false, error: { reason: 'input' } });
      expect(JSON.parse(lines[lines.length - 1]!)).toEqual({ id: 7, ok: true, counter: '4' });
      // Ids are echoed when they could be read.
      expect(JSON.parse(lines[7]!).id).toBe(1);
      expect(JSON.parse(lines[0]!).id).toBe(null);
      const invalid = await rawExchange(running.socketPath, Uint8Array.of(0xff, 0xfe, 0x0a), 1);
      expect(JSON.parse(invalid.lines[0]!)).toMatchObject({ id: null, ok: false, error: { reason: 'input' } });
      const huge = await rawExchange(running.socketPath, `{"id":1,"op":"write","nonce":"${'0'.repeat(32)}","text":"${'a'.repeat(70_000)}"}\n{"id":2,"op":"counter"}\n`, 2);
      expect(huge.closed).toBe(true);
      expect(huge.lines).toHaveLength(1);
      expect(JSON.parse(huge.lines[0]!)).toMatchObject({ id: null, ok: false, error: { reason: 'input', message: expect.stringMatching(/at most 65536 bytes/) } });
      expect(readFileSync(running.server.trailPath)).toEqual(trailBefore);
      expect(card.card.counter()).toBe(4n);
      expect(await client.counter()).toBe(4n);
    } finally {
      client.close();
      await running.stop();
    }
  });

  it('the client refuses bad arguments before sending anything', async () => {
    const card = await inProcessRentalCard();
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    const client = await RentalClient.connect(running.socketPath);
    try {
      await refusal(client.write(new Uint8Array(15), 'x'), 'input');
      await refusal(client.write(nonce(), '\uD800'), 'input');
      await refusal(client.write(nonce(), 'x', -1n), 'input');
      await refusal(client.write(nonce(), 'é'.repeat(40_000)), 'input');
      expect(card.card.counter()).toBe(0n);
      expect(await client.counter()).toBe(0n);
    } finally {
      client.close();
      await running.stop();
    }
  });
});

describe('backup trail ([0062]: a primary and a backup on another medium)', () => {
  it('a deleted primary is restored from the backup at start; a cut primary is extended from it', async () => {
    const card = await inProcessRentalCard();
    const [dir, backup] = [tempDir(), tempDir()];
    let running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    let client = await RentalClient.connect(running.socketPath);
    for (let i = 0; i < 5; i++) await client.write(nonce(), `r${i}`);
    client.close();
    await running.stop();
    const whole = readFileSync(join(backup, 'trail.jsonl'), 'utf8');
    rmSync(join(dir, 'trail.jsonl'));
    running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    expect(running.logs.join('\n')).toMatch(/restored the trail .* from its backup .*5 records from line 1/);
    expect(readFileSync(join(dir, 'trail.jsonl'), 'utf8')).toBe(whole);
    await running.stop();
    writeFileSync(join(dir, 'trail.jsonl'), whole.split('\n').slice(0, 2).join('\n') + '\n');
    running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    expect(running.logs.join('\n')).toMatch(/3 records from line 3/);
    client = await RentalClient.connect(running.socketPath);
    expect((await client.write(nonce(), 'after')).record.counter).toBe(5n);
    client.close();
    await running.stop();
    expect(readFileSync(join(dir, 'trail.jsonl'), 'utf8')).toBe(readFileSync(join(backup, 'trail.jsonl'), 'utf8'));
  });

  it('a shorter or missing backup is brought up to date from the primary', async () => {
    const card = await inProcessRentalCard();
    const [dir, backup] = [tempDir(), tempDir()];
    let running = await startRentalServer({ access: card.access, directory: dir });
    const client = await RentalClient.connect(running.socketPath);
    for (let i = 0; i < 3; i++) await client.write(nonce(), `r${i}`);
    client.close();
    await running.stop();
    running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    expect(running.logs.join('\n')).toMatch(/brought the backup .* up to date .*3 records/);
    await running.stop();
    expect(readFileSync(join(backup, 'trail.jsonl'), 'utf8')).toBe(readFileSync(join(dir, 'trail.jsonl'), 'utf8'));
  });

  it('two trails that disagree make the server refuse to start, naming the first differing line; nothing is changed', async () => {
    const card = await inProcessRentalCard();
    const [dir, backup] = [tempDir(), tempDir()];
    const running = await startRentalServer({ access: card.access, directory: dir, backupDirectory: backup });
    const client = await RentalClient.connect(running.socketPath);
    for (let i = 0; i < 4; i++) await client.write(nonce(), `r${i}`);
    client.close();
    await running.stop();
    const lines = readFileSync(join(backup, 'trail.jsonl'), 'utf8').split('\n');
    const other = { ...JSON.parse(lines[2]!), text: 'changed' } as Record<string, string>;
    lines[2] = JSON.stringify(other);
    writeFileSync(join(backup, 'trail.jsonl'), lines.join('\n'));
    const before = [readFileSync(join(dir, 'trail.jsonl')), readFileSync(join(backup, 'trail.jsonl'))];
    const error = await refusal(RentalServer.open({ card: card.access, directory: dir, backupDirectory: backup }), 'storage');
    expect(error.message).toMatch(/differ at line 3/);
    expect(error.line).toBe(3);
    expect([readFileSync(join(dir, 'trail.jsonl')), readFileSync(join(backup, 'trail.jsonl'))]).toEqual(before);
    // The locks were released: once the files agree, the server starts.
    writeFileSync(join(backup, 'trail.jsonl'), before[0]!, { mode: 0o600 });
    const again = await RentalServer.open({ card: card.access, directory: dir, backupDirectory: backup });
    await again.close();
  });
});

describe('gaps the server did not cause (DESIGN.md "Counters that never roll back")', () => {
  it('is reported once with its counters, stays visible to validation (stale), and `bridge` writes the card-signed record', async () => {
    const card = await inProcessRentalCard();
    const dir = tempDir();
    let running = await startRentalServer({ access: card.access, directory: dir });
    let client = await RentalClient.connect(running.socketPath);
    await client.write(nonce(), 'first');
    client.close();
    await running.stop();
    // The card moves on outside the server (a recovered server-backed card's new floor, say).
    const other = await card.other();
    for (let i = 0; i < 3; i++) await other.client.signAndIncrement(new Uint8Array(32));
    running = await startRentalServer({ access: card.access, directory: dir });
    expect(running.logs.filter((line) => /warning: the card's counter is 4, but the trail .* ends at counter 0: counters 1\.\.3 carry no record/.test(line))).toHaveLength(1);
    expect(running.logs.join('\n')).toMatch(/vsc rental bridge/);
    client = await RentalClient.connect(running.socketPath);
    try {
      expect((await client.status()).gap).toEqual({ from: 1n, to: 3n });
      const answer = await client.bridge();
      expect(answer.bridged).toEqual({ from: 1n, to: 3n });
      expect(answer.record).toMatchObject({ text: 'skipped 1 3', counter: 4n });
      expect(await client.bridge()).toEqual({ bridged: null });
      const trail = new TrailFile(running.server.trailPath);
      const validation = await validateThroughServer({ link: client, trustRoot: card.trustRoot, offset: 0n, text: (c) => `${c}`, records: () => trail.recordBatches() });
      expect(validation.bridged).toEqual([{ from: 1n, to: 3n }]);
    } finally {
      client.close();
      await running.stop();
    }
  });

  it('without the bridge, ValidateTrail refuses the trail as stale', async () => {
    const card = await inProcessRentalCard();
    const dir = tempDir();
    let running = await startRentalServer({ access: card.access, directory: dir });
    let client = await RentalClient.connect(running.socketPath);
    await client.write(nonce(), 'first');
    client.close();
    await running.stop();
    await (await card.other()).client.signAndIncrement(new Uint8Array(32));
    running = await startRentalServer({ access: card.access, directory: dir });
    client = await RentalClient.connect(running.socketPath);
    try {
      const trail = new TrailFile(running.server.trailPath);
      await refusal(validateThroughServer({ link: client, trustRoot: card.trustRoot, offset: 0n, text: (c) => `${c}`, records: () => trail.recordBatches() }), 'stale');
    } finally {
      client.close();
      await running.stop();
    }
  });
});

describe('one server per machine, per trail, per card', () => {
  it('refuses a socket another server answers on, removes a stale socket file, and removes its own at stop', async () => {
    const card = await inProcessRentalCard();
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    await expect(startRentalServer({ access: card.access, directory: tempDir(), socketPath: running.socketPath })).rejects.toMatchObject({ code: 'rental.socket.in-use', exitCode: 3 });
    await running.stop();
    expect(existsSync(running.socketPath)).toBe(false);
    // A socket file whose server died (no one answers) is replaced: a process listening there, killed by SIGKILL.
    const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(running.socketPath)}, () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(statSync(running.socketPath).isSocket()).toBe(true);
    const again = await startRentalServer({ access: card.access, directory: tempDir(), socketPath: running.socketPath });
    await again.stop();
  });

  it('refuses a trail directory another server holds, a trail of another card, and a card counter behind the trail', async () => {
    const card = await inProcessRentalCard();
    const dir = tempDir();
    const running = await startRentalServer({ access: card.access, directory: dir });
    const client = await RentalClient.connect(running.socketPath);
    await client.write(nonce(), 'mine');
    client.close();
    await expect(RentalServer.open({ card: card.access, directory: dir })).rejects.toMatchObject({ code: 'lock.held', exitCode: 3 });
    await running.stop();
    const stranger = await inProcessRentalCard({ counter: 10n });
    await refusal(RentalServer.open({ card: stranger.access, directory: dir }), 'wrong-card');
    const rolledBack = await inProcessRentalCard({ seed: card.seed, serial: card.trustRoot.serial, counter: 0n });
    await refusal(RentalServer.open({ card: rolledBack.access, directory: dir }), 'rollback');
  });

  it('stopping lets the Write in progress finish and be answered, refuses what waited behind it (busy), and removes the socket', async () => {
    const card = await inProcessRentalCard();
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    const client = await RentalClient.connect(running.socketPath);
    const writes = Array.from({ length: 5 }, (_, i) => client.write(nonce(), `w${i}`).then((answer) => answer.record, (error: unknown) => error as RentalError));
    // Let the first request reach the server before stopping it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await running.stop();
    const results = await Promise.all(writes);
    const written = results.filter((result): result is AuditRecord => !(result instanceof Error));
    const refused = results.filter((result): result is RentalError => result instanceof Error);
    expect(written.length).toBeGreaterThanOrEqual(1);
    for (const error of refused) expect(error.reason).toBe('busy');
    expect((await trailRecords(running.server.trailPath)).map((record) => record.counter)).toEqual(written.map((record) => record.counter));
    expect(card.card.counter()).toBe(BigInt(written.length));
    expect(existsSync(running.socketPath)).toBe(false);
    client.close();
  });

  it('names the card\'s key mode: a universal-key card signs with the serial in the digest ([0098]-[0100])', async () => {
    const card = await inProcessRentalCard({ keyMode: 'universal', serial: 'SN-UNIVERSAL' });
    const running = await startRentalServer({ access: card.access, directory: tempDir() });
    const client = await RentalClient.connect(running.socketPath);
    try {
      expect((await client.hello()).card.keyMode).toBe('universal');
      const { record } = await client.write(nonce(), 'u');
      expect(verifyRecord(record, card.trustRoot)).toBe(true);
      expect(recordHash(record.nonce, record.text)).toHaveLength(32);
    } finally {
      client.close();
      await running.stop();
    }
  });
});

describe('the socket\'s place (DESIGN.md "Software rental": a local socket in a 0700 directory)', () => {
  it('defaults to rental.sock in the machine lock\'s per-uid directory; --socket makes its directory 0700 or refuses one that is not', async () => {
    const uid = process.getuid!();
    expect([`/run/user/${uid}/vsc/rental.sock`, `/tmp/vsc-${uid}/rental.sock`]).toContain(await rentalSocketPath());
    const root = tempDir();
    const made = await prepareRentalSocketPath(join(root, 'new', 'deeper', 'rental.sock'));
    expect(made).toBe(join(root, 'new', 'deeper', 'rental.sock'));
    expect(statSync(join(root, 'new', 'deeper')).mode & 0o777).toBe(0o700);
    mkdirSync(join(root, 'open'), { mode: 0o755 });
    chmodSync(join(root, 'open'), 0o755);
    await expect(prepareRentalSocketPath(join(root, 'open', 'rental.sock'))).rejects.toMatchObject({ code: 'directory.unsafe', exitCode: 3 });
    await expect(rentalSocketPath(`/tmp/${'x'.repeat(120)}/rental.sock`)).rejects.toMatchObject({ code: 'usage', exitCode: 2 });
  });

  it('a client with no server to reach says so (rental.socket.not-running, exit 3)', async () => {
    await expect(RentalClient.connect(join(tempDir(), 'rental.sock'))).rejects.toMatchObject({ code: 'rental.socket.not-running', exitCode: 3 });
  });
});

describe('a trail cut short while the server was stopped', () => {
  it('a torn last line the journal does not hold is refused (truncated), nothing repaired', async () => {
    const card = await inProcessRentalCard();
    const dir = tempDir();
    const running = await startRentalServer({ access: card.access, directory: dir });
    const client = await RentalClient.connect(running.socketPath);
    await client.write(nonce(), 'a');
    await client.write(nonce(), 'b');
    client.close();
    await running.stop();
    const path = join(dir, 'trail.jsonl');
    truncateSync(path, statSync(path).size - 10);
    const before = readFileSync(path);
    await refusal(RentalServer.open({ card: card.access, directory: dir }), 'truncated');
    expect(readFileSync(path)).toEqual(before);
  });
});
