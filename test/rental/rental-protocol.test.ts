// The rental server's wire protocol (rental-protocol.ts; patent 003 [0058]): one JSON line per message, at most 64 KiB;
// requests parsed strictly (every bad line is a problem to answer, never an exception), answers decoded strictly by
// the client (a server it does not trust, [0058]). Fuzzed with random bytes, mutated valid messages, oversized lines,
// and every valid stream cut at every byte.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../src/bytes/index.js';
import {
  decodeAnswer, encodeAnswer, encodeRefusal, encodeRequest, MAX_MESSAGE_BYTES, parseRequest, parseResponseEnvelope, refusalError, RentalError, RentalLineReader,
  RentalProtocolError, RENTAL_OPS, type AuditRecord, type LineEvent, type RentalAnswers, type RentalOp, type RentalRequest,
} from '../../src/rental/index.js';

const NONCE = Uint8Array.from({ length: 16 }, (_, i) => i);
const RECORD: AuditRecord = { nonce: NONCE, text: 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3', counter: 340282366920938463463374607431768211454n, signature: new Uint8Array(64).fill(0xab) };

const REQUESTS: RentalRequest[] = [
  { id: 0, op: 'hello' },
  { id: 1, op: 'counter' },
  { id: 2, op: 'bridge' },
  { id: 2147483647, op: 'status' },
  { id: 3, op: 'write', nonce: NONCE, text: 'WP 15 minutes public key 9828a8c12a5873654bac684517d3afe3' },
  { id: 4, op: 'write', nonce: NONCE, text: 'ünïcödé \u2028 "quoted" \\ \n newline 🙂', expectCounter: 0n },
  { id: 5, op: 'write', nonce: NONCE, text: '', expectCounter: (1n << 128n) - 1n },
];

const ANSWERS: { [Op in RentalOp]: RentalAnswers[Op] } = {
  hello: { protocol: 1, card: { serial: 'SN-1', publicKey: new Uint8Array(32).fill(7), keyMode: 'universal' }, trail: '/tmp/x/trail.jsonl', counter: 12n },
  counter: { counter: (1n << 128n) - 1n },
  write: { record: RECORD, counterAfter: RECORD.counter + 1n },
  bridge: { bridged: { from: 3n, to: 5n }, record: { ...RECORD, text: 'skipped 3 5', counter: 6n } },
  status: { counter: 9n, trail: { path: '/t/trail.jsonl', lastCounter: 8n, records: 9 }, backup: { path: '/b/trail.jsonl', lastCounter: null, records: 0 }, journal: 'answered', gap: { from: 1n, to: 1n } },
};

function events(reader: RentalLineReader, chunks: readonly Uint8Array[]): LineEvent[] {
  return chunks.flatMap((chunk) => reader.push(chunk));
}

function problem(line: string): { id: number | null; message: string } {
  const parsed = parseRequest(line);
  expect(parsed.ok, line.slice(0, 100)).toBe(false);
  return parsed as { ok: false; id: number | null; message: string };
}

describe('requests', () => {
  it('encode to one line and parse back unchanged, for every op', () => {
    for (const request of REQUESTS) {
      const line = encodeRequest(request);
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      expect(parseRequest(line.slice(0, -1))).toEqual({ ok: true, request });
    }
    expect(new Set(REQUESTS.map((request) => request.op))).toEqual(new Set(RENTAL_OPS));
  });

  it('accept any key order and spacing JSON allows', () => {
    expect(parseRequest(' { "op" : "counter" , "id" : 9 } ')).toEqual({ ok: true, request: { id: 9, op: 'counter' } });
  });

  it('refuse, naming what was expected, with the id when it could be read', () => {
    const nonce = '00'.repeat(16);
    const table: [string, number | null, RegExp][] = [
      ['', null, /empty line/],
      ['{', null, /not JSON/],
      ['[1]', null, /JSON object .*an array/],
      ['"hello"', null, /JSON object .*a string/],
      ['{"op":"hello"}', null, /"id" as an integer/],
      ['{"id":-1,"op":"hello"}', null, /"id" as an integer 0\.\.2147483647/],
      ['{"id":2147483648,"op":"hello"}', null, /"id"/],
      ['{"id":1e400,"op":"hello"}', null, /"id"/],
      ['{"id":0.5,"op":"hello"}', null, /"id"/],
      ['{"id":"3","op":"hello"}', null, /"id" .*a string/],
      ['{"id":3}', 3, /"op" as one of hello, counter, write, bridge, status/],
      ['{"id":3,"op":"HELLO"}', 3, /"op" as one of/],
      ['{"id":3,"op":"hello","x":1}', 3, /only the fields id, op, got "x"/],
      ['{"id":3,"op":"status","__proto__":{}}', 3, /only the fields/],
      ['{"id":3,"op":"write","text":"x"}', 3, /"nonce" as 32 lowercase hex/],
      [`{"id":3,"op":"write","nonce":"${nonce.toUpperCase().replace(/0/g, 'A')}","text":"x"}`, 3, /"nonce"/],
      [`{"id":3,"op":"write","nonce":"${nonce}00","text":"x"}`, 3, /"nonce"/],
      [`{"id":3,"op":"write","nonce":"${nonce}"}`, 3, /"text": expected the text as a string/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":7}`, 3, /"text"/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"\\udc00"}`, 3, /lone surrogate/],
      // Short enough for a line, too long for the answer that would carry the record back.
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"${'\\u0001'.repeat(10_850)}"}`, 3, /at most 65024 bytes as a JSON string, got 65102/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"x","expectCounter":5}`, 3, /"expectCounter" as a decimal string/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"x","expectCounter":"05"}`, 3, /"expectCounter"/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"x","expectCounter":"-1"}`, 3, /"expectCounter"/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"x","expectCounter":"${1n << 128n}"}`, 3, /"expectCounter"/],
      [`{"id":3,"op":"write","nonce":"${nonce}","text":"x","expectCounter":null}`, 3, /"expectCounter"/],
      [`{"id":3,"op":"counter","nonce":"${nonce}"}`, 3, /only the fields id, op/],
    ];
    for (const [line, id, message] of table) {
      const refused = problem(line);
      const label = line.slice(0, 100);
      expect(refused.id, label).toBe(id);
      expect(refused.message, label).toMatch(message);
      expect(refused.message).not.toContain('\n');
      expect(refused.message.length).toBeLessThan(300);
    }
    expect(problem('x'.repeat(MAX_MESSAGE_BYTES + 1)).message).toMatch(/at most 65536 bytes/);
  });

  it('the encoder refuses what the server would refuse', () => {
    const bad: unknown[] = [
      { id: -1, op: 'hello' }, { id: 1, op: 'nope' }, { id: 1, op: 'write', nonce: new Uint8Array(15), text: 'x' },
      { id: 1, op: 'write', nonce: NONCE, text: '\ud800' }, { id: 1, op: 'write', nonce: NONCE, text: 'x', expectCounter: 1n << 128n }, null,
    ];
    for (const request of bad) expect(() => encodeRequest(request as RentalRequest)).toThrow(RentalError);
  });

  it('fuzz: random strings and random bytes through the line reader give requests or problems, never an exception', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (line) => {
      const parsed = parseRequest(line);
      if (parsed.ok) expect(parseRequest(encodeRequest(parsed.request).slice(0, -1))).toEqual(parsed);
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), (chunks) => {
      const reader = new RentalLineReader(256);
      for (const event of events(reader, chunks)) {
        if (event.kind === 'line') parseRequest(event.text);
      }
    }), { numRuns: 1000 });
  });

  it('fuzz: valid requests mutated (bytes changed, cut, duplicated, spliced) parse to a request that re-encodes, or a problem', () => {
    const lines = REQUESTS.map((request) => encodeRequest(request).slice(0, -1));
    const mutation = fc.tuple(fc.nat(lines.length - 1), fc.array(fc.tuple(fc.nat(400), fc.constantFrom('flip', 'cut', 'dup', 'insert'), fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 5 }));
    fc.assert(fc.property(mutation, ([which, edits]) => {
      let line = lines[which]!;
      for (const [at, kind, text] of edits) {
        const i = at % (line.length + 1);
        if (kind === 'flip') line = line.slice(0, i) + String.fromCharCode((line.charCodeAt(i) || 32) ^ 1) + line.slice(i + 1);
        else if (kind === 'cut') line = line.slice(0, i);
        else if (kind === 'dup') line = line.slice(0, i) + line.slice(i);
        else line = line.slice(0, i) + text + line.slice(i);
      }
      const parsed = parseRequest(line);
      if (parsed.ok) expect(parseRequest(encodeRequest(parsed.request).slice(0, -1))).toEqual(parsed);
      else expect(typeof parsed.message).toBe('string');
    }), { numRuns: 3000 });
  });
});

describe('framing', () => {
  const stream = utf8(REQUESTS.map(encodeRequest).join(''));
  const whole = events(new RentalLineReader(), [stream]);

  it('the same lines whatever the cut: a stream split at every byte, and into single bytes', () => {
    expect(whole).toHaveLength(REQUESTS.length);
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(events(new RentalLineReader(), [stream.subarray(0, cut), stream.subarray(cut)])).toEqual(whole);
    }
    expect(events(new RentalLineReader(), Array.from(stream, (byte) => Uint8Array.of(byte)))).toEqual(whole);
  });

  it('a line of exactly 64 KiB passes; one byte more is too-long, then nothing more is read', () => {
    const exact = new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(0x61);
    exact[MAX_MESSAGE_BYTES] = 0x0a;
    const fits = events(new RentalLineReader(), [exact]);
    expect(fits).toHaveLength(1);
    expect(fits[0]).toMatchObject({ kind: 'line' });
    const over = new Uint8Array(MAX_MESSAGE_BYTES + 2).fill(0x61);
    over[MAX_MESSAGE_BYTES + 1] = 0x0a;
    const reader = new RentalLineReader();
    expect(events(reader, [over, utf8('{"id":1,"op":"hello"}\n')])).toEqual([{ kind: 'too-long' }]);
    expect(reader.overflowed).toBe(true);
    // Without a newline at all, the reader gives up as soon as the limit is passed, holding no more than it.
    const endless = new RentalLineReader();
    expect(events(endless, Array.from({ length: 70 }, () => new Uint8Array(1024).fill(0x20)))).toEqual([{ kind: 'too-long' }]);
  });

  it('a line that is not UTF-8 is one not-utf8 event and the lines after it still come', () => {
    const reader = new RentalLineReader();
    expect(events(reader, [Uint8Array.of(0x7b, 0xc3, 0x28, 0x0a), utf8('{"id":1,"op":"hello"}\n')])).toEqual([{ kind: 'not-utf8' }, { kind: 'line', text: '{"id":1,"op":"hello"}' }]);
    // A character cut between two reads is not an error.
    const cut = utf8('{"text":"é"}\n');
    expect(events(new RentalLineReader(), [cut.subarray(0, 10), cut.subarray(10)])).toEqual([{ kind: 'line', text: '{"text":"é"}' }]);
  });

  it('a partial last line is reported as such', () => {
    const reader = new RentalLineReader();
    reader.push(utf8('{"id":1'));
    expect(reader.partial).toBe(true);
  });
});

describe('answers', () => {
  it('encode to one line and decode back unchanged, for every op', () => {
    for (const op of RENTAL_OPS) {
      const line = encodeAnswer(17, op, ANSWERS[op]);
      expect(line.slice(0, -1)).not.toContain('\n');
      const envelope = parseResponseEnvelope(line.slice(0, -1));
      expect(envelope).toMatchObject({ ok: true, id: 17 });
      expect(decodeAnswer(op, (envelope as { fields: Record<string, unknown> }).fields)).toEqual(ANSWERS[op]);
    }
    const none = parseResponseEnvelope(encodeAnswer(1, 'bridge', { bridged: null }).slice(0, -1));
    expect(decodeAnswer('bridge', (none as { fields: Record<string, unknown> }).fields)).toEqual({ bridged: null });
  });

  it('a refusal carries the server\'s reason into a RentalError, its message cut to one line', () => {
    const line = encodeRefusal(null, 'counter-moved', 'the counter moved\nsecond line');
    const envelope = parseResponseEnvelope(line.slice(0, -1));
    expect(envelope).toEqual({ ok: false, id: null, error: { reason: 'counter-moved', message: 'the counter moved' } });
    const error = refusalError((envelope as { error: { reason: 'counter-moved'; message: string } }).error);
    expect(error).toBeInstanceOf(RentalError);
    expect(error.reason).toBe('counter-moved');
    expect(error.exitCode).toBe(3);
  });

  it('refuses answers of the wrong shape (RentalProtocolError): a server is not trusted ([0058])', () => {
    const good = (op: RentalOp) => JSON.parse(encodeAnswer(1, op, ANSWERS[op])) as Record<string, unknown>;
    const cases: [RentalOp, (fields: Record<string, unknown>) => unknown][] = [
      ['counter', (f) => ({ ...f, counter: 5 })],
      ['counter', (f) => ({ ...f, counter: '007' })],
      ['counter', (f) => ({ ...f, extra: true })],
      ['hello', (f) => ({ ...f, protocol: 2 })],
      ['hello', (f) => ({ ...f, trail: 'relative/path' })],
      ['hello', (f) => ({ ...f, card: { ...(f['card'] as object), publicKey: 'zz' } })],
      ['hello', (f) => ({ ...f, card: { ...(f['card'] as object), keyMode: 'other' } })],
      ['write', (f) => ({ ...f, record: { ...(f['record'] as object), counter: '12' } })],
      ['write', (f) => ({ ...f, record: { ...(f['record'] as object), extra: '' } })],
      ['write', (f) => ({ ...f, record: 'line' })],
      ['bridge', (f) => ({ ...f, record: undefined })],
      ['bridge', (f) => ({ ...f, bridged: { from: '5', to: '3' } })],
      ['status', (f) => ({ ...f, journal: 'full' })],
      ['status', (f) => ({ ...f, trail: { path: '/t', lastCounter: null, records: 3 } })],
      ['status', (f) => ({ ...f, gap: [] })],
    ];
    for (const [op, change] of cases) {
      const line = JSON.stringify(change(good(op)));
      const decode = () => {
        const envelope = parseResponseEnvelope(line);
        if (!envelope.ok) throw new Error('expected an answer');
        return decodeAnswer(op, envelope.fields);
      };
      expect(decode, `${op}: ${line.slice(0, 80)}`).toThrow(RentalProtocolError);
    }
    for (const line of ['', 'x', '[]', '{"id":1}', '{"id":1,"ok":"yes"}', '{"id":-2,"ok":true}', '{"id":1,"ok":false,"error":{"reason":"nope","message":"m"}}', '{"id":1,"ok":false,"error":{"reason":"input"}}', '{"id":"1","ok":false,"error":{"reason":"input","message":"m"}}']) {
      expect(() => parseResponseEnvelope(line), line).toThrow(RentalProtocolError);
    }
  });

  it('fuzz: random and mutated answer lines decode or throw RentalProtocolError, nothing else', () => {
    const decodeAny = (line: string, op: RentalOp) => {
      try {
        const envelope = parseResponseEnvelope(line);
        if (envelope.ok) decodeAnswer(op, envelope.fields);
      } catch (error) {
        expect(error).toBeInstanceOf(RentalProtocolError);
      }
    };
    const op = fc.constantFrom(...RENTAL_OPS);
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), op, decodeAny), { numRuns: 1000 });
    fc.assert(fc.property(op, fc.array(fc.tuple(fc.nat(600), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 4 }), (which, edits) => {
      let line = encodeAnswer(3, which, ANSWERS[which]).slice(0, -1);
      for (const [at, text] of edits) {
        const i = at % (line.length + 1);
        line = line.slice(0, i) + text + line.slice(i + 1);
      }
      decodeAny(line, which);
    }), { numRuns: 3000 });
  });
});
