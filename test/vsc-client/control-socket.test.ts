// The control socket's framed protocol: frames across split and coalesced reads, the request and answer
// codecs (encode, decode, round trip, malformed inputs), and a server and client over a real unix socket.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ensurePrivateDirectory } from '../../src/files/index.js';
import {
  askControlSocket, ControlFrameError, ControlFrameReader, decodeControlAnswer, decodeControlRequest,
  encodeControlAnswer, encodeControlRequest, MAX_CONTROL_FRAME, serveControlSocket, type ControlAnswer,
  type ControlStatus,
} from '../../src/vsc-client/control-socket.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const STATUS: ControlStatus = { serial: 'S-1', pid: 4242, nextCounter: '17', nextWindow: ['100', '200'], vpcd: '127.0.0.1:35963', removing: false };

describe('ControlFrameReader', () => {
  it('returns a frame only once its newline arrives, whatever the split', () => {
    const whole = utf8('status\n');
    for (let cut = 0; cut <= whole.length; cut++) {
      const reader = new ControlFrameReader();
      const first = reader.push(whole.slice(0, cut));
      const second = reader.push(whole.slice(cut));
      expect([...first, ...second]).toEqual(['status']);
      expect(reader.partial).toBe(false);
    }
  });

  it('returns every frame of a coalesced read, in order, and keeps the tail', () => {
    const reader = new ControlFrameReader();
    expect(reader.push(utf8('status\nremove\nsta'))).toEqual(['status', 'remove']);
    expect(reader.partial).toBe(true);
    expect(reader.push(utf8('tus\n'))).toEqual(['status']);
  });

  it('joins a multi-byte character split across reads', () => {
    const bytes = utf8('error café\n');
    const reader = new ControlFrameReader();
    const at = bytes.indexOf(0xc3) + 1;
    expect([...reader.push(bytes.slice(0, at)), ...reader.push(bytes.slice(at))]).toEqual(['error café']);
  });

  it.each([
    ['a frame longer than the maximum', () => new ControlFrameReader(8).push(utf8('123456789\n'))],
    ['an unterminated frame beyond the maximum', () => new ControlFrameReader(8).push(utf8('123456789'))],
    ['an oversized frame built from small reads', () => { const reader = new ControlFrameReader(8); reader.push(utf8('12345')); reader.push(utf8('6789')); }],
    ['bytes that are not UTF-8', () => new ControlFrameReader().push(new Uint8Array([0xff, 0x0a]))],
  ])('refuses %s with a ControlFrameError', (_, run) => {
    expect(run).toThrow(ControlFrameError);
  });

  it('uses a maximum far above any real message', () => {
    expect(MAX_CONTROL_FRAME).toBeGreaterThan(encodeControlAnswer({ kind: 'status', status: STATUS }).length * 10);
  });
});

describe('control requests', () => {
  it('encodes each request as one line and decodes it back', () => {
    for (const request of ['status', 'remove'] as const) {
      expect(encodeControlRequest(request)).toBe(`${request}\n`);
      expect(decodeControlRequest(encodeControlRequest(request).slice(0, -1))).toBe(request);
    }
  });

  it.each(['', 'stat', 'REMOVE', 'remove now', '{"op":"status"}'])('refuses the request %j', (frame) => {
    expect(() => decodeControlRequest(frame)).toThrow(ControlFrameError);
  });
});

describe('control answers', () => {
  const answers: ControlAnswer[] = [
    { kind: 'status', status: STATUS },
    { kind: 'status', status: { ...STATUS, nextWindow: null, vpcd: null, removing: true } },
    { kind: 'removed' },
    { kind: 'error', message: 'the server refused' },
  ];

  it('encodes the wire forms the CLI has always spoken', () => {
    expect(encodeControlAnswer({ kind: 'removed' })).toBe('removed\n');
    expect(encodeControlAnswer({ kind: 'error', message: 'no\nsecond line' })).toBe('error no\n');
    expect(encodeControlAnswer({ kind: 'status', status: STATUS })).toBe(`status ${JSON.stringify(STATUS)}\n`);
  });

  it.each(answers)('round-trips %j', (answer) => {
    expect(decodeControlAnswer(encodeControlAnswer(answer).slice(0, -1))).toEqual(answer);
  });

  it.each([
    ['an empty frame', ''],
    ['an unknown word', 'inserted'],
    ['malformed JSON', 'status {"serial":'],
    ['a status that is not an object', 'status 42'],
    ['a status without serial', `status ${JSON.stringify({ ...STATUS, serial: undefined })}`],
    ['a pid as text', `status ${JSON.stringify({ ...STATUS, pid: '1' })}`],
    ['a window of one end', `status ${JSON.stringify({ ...STATUS, nextWindow: ['1'] })}`],
    ['a numeric vpcd', `status ${JSON.stringify({ ...STATUS, vpcd: 35963 })}`],
    ['removing missing', `status ${JSON.stringify({ ...STATUS, removing: undefined })}`],
  ])('refuses %s', (_, frame) => {
    expect(() => decodeControlAnswer(frame)).toThrow(ControlFrameError);
  });
});

describe('control socket over a unix socket', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
  });
  const dir = ensurePrivateDirectory(mkdtempSync(join(tmpdir(), 'vsc-control-')));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const path = (): string => join(dir, `control-${randomBytes(8).toString('hex')}.sock`);

  /** Sends raw bytes, in the pieces given, and returns everything the server answered. */
  const raw = (at: string, pieces: Uint8Array[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = createConnection(at);
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      void (async () => {
        for (const piece of pieces) {
          socket.write(piece);
          await new Promise((next) => setTimeout(next, 5));
        }
      })();
    });

  it('answers status and remove to the client', async () => {
    const at = path();
    const seen: string[] = [];
    server = await serveControlSocket(at, async (request) => {
      seen.push(request);
      return request === 'status' ? { kind: 'status', status: STATUS } : { kind: 'removed' };
    });
    expect(await askControlSocket(at, 'status', '/state')).toEqual({ kind: 'status', status: STATUS });
    expect(await askControlSocket(at, 'remove', '/state')).toEqual({ kind: 'removed' });
    expect(seen).toEqual(['status', 'remove']);
  });

  it('reads a request split over several writes', async () => {
    const at = path();
    server = await serveControlSocket(at, async () => ({ kind: 'removed' }));
    expect(await raw(at, [utf8('rem'), utf8('ov'), utf8('e\n')])).toBe('removed\n');
  });

  it('answers only the first of coalesced requests', async () => {
    const at = path();
    const seen: string[] = [];
    server = await serveControlSocket(at, async (request) => (seen.push(request), { kind: 'removed' }));
    expect(await raw(at, [utf8('remove\nstatus\n')])).toBe('removed\n');
    expect(seen).toEqual(['remove']);
  });

  it.each([
    ['an unknown request', [utf8('format c:\n')], 'error unknown request\n'],
    ['an oversized frame', [new Uint8Array(MAX_CONTROL_FRAME + 1).fill(0x61)], `error control frame: expected at most ${MAX_CONTROL_FRAME} characters, got more\n`],
    ['bytes that are not UTF-8', [new Uint8Array([0xfe, 0xff, 0x0a])], 'error control frame: expected UTF-8 text, got invalid bytes\n'],
  ])('answers %s with an error, closes, and never calls the handler', async (_, pieces, expected) => {
    const at = path();
    let calls = 0;
    server = await serveControlSocket(at, async () => (calls++, { kind: 'removed' }));
    expect(await raw(at, pieces)).toBe(expected);
    expect(calls).toBe(0);
  });

  it('answers a failing handler with its first line as an error', async () => {
    const at = path();
    server = await serveControlSocket(at, async () => {
      throw new Error('server unreachable\ndetails');
    });
    expect(await askControlSocket(at, 'remove', '/state')).toEqual({ kind: 'error', message: 'server unreachable' });
  });

  it('says no card is inserted when nothing listens', async () => {
    await expect(askControlSocket(path(), 'status', '/state')).rejects.toMatchObject({ code: 'card.not-inserted', exitCode: 3 });
  });

  it('makes the socket 0600 and replaces a stale socket a dead card process left', async () => {
    const at = path();
    // A socket file nobody listens on any more: what a card process killed -9 leaves behind.
    const script = `require('net').createServer().listen(${JSON.stringify(at)}, () => process.kill(process.pid, 'SIGKILL'))`;
    await new Promise<void>((resolve) => execFile(process.execPath, ['-e', script], () => resolve()));
    expect(lstatSync(at).isSocket()).toBe(true);
    server = await serveControlSocket(at, async () => ({ kind: 'removed' }));
    expect(statSync(at).mode & 0o777).toBe(0o600);
    expect(await askControlSocket(at, 'remove', '/state')).toEqual({ kind: 'removed' });
  });

  it.each([
    ['a directory', (at: string) => mkdirSync(join(at, 'inside'), { recursive: true })],
    ['a regular file', (at: string) => writeFileSync(at, 'not a socket')],
  ])('refuses to listen where %s stands, with an error naming the path', async (_, plant) => {
    const at = path();
    plant(at);
    await expect(serveControlSocket(at, async () => ({ kind: 'removed' }))).rejects.toMatchObject({
      code: 'control.listen', message: expect.stringContaining(`cannot listen on the control socket ${at}: EADDRINUSE`) as string,
    });
  });

  it('cannot be reached by another uid: the 0700 directory is the uid check (no SO_PEERCRED in Node)', async () => {
    if (process.getuid!() !== 0) throw new Error(`this test switches to the user nobody with runuser and must run as root; it runs as uid ${process.getuid!()}`);
    const at = path();
    let calls = 0;
    server = await serveControlSocket(at, async () => (calls++, { kind: 'removed' }));
    const script = `require('net').createConnection(${JSON.stringify(at)}).on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); }).write('remove\\n')`;
    const output = await new Promise<string>((resolve, reject) => {
      execFile('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script], { timeout: 15_000 }, (error, stdout, stderr) =>
        error === null ? resolve(stdout.trim()) : reject(new Error(`runuser failed: ${stderr}`, { cause: error })),
      );
    });
    expect(output).toBe('EACCES');
    expect(calls).toBe(0);
    // The same socket answers its own user.
    expect(await askControlSocket(at, 'remove', '/state')).toEqual({ kind: 'removed' });
  });
});
