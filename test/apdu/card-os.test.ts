// The card OS: SELECT, class and instruction checks, command chaining, 61xx / GET RESPONSE.
import { describe, expect, it } from 'vitest';
import { CardOs } from '../../src/apdu/card-os.js';
import type { Applet } from '../../src/apdu/applet.js';
import type { CommandApdu } from '../../src/apdu/command-apdu.js';
import { SW, SwError } from '../../src/apdu/status-words.js';
import { parseResponseApdu } from '../../src/apdu/response-apdu.js';
import { buildAtr } from '../../src/apdu/atr.js';
import { fromHex, toHex } from '../../src/bytes/index.js';

/** Answers INS 01 with P1P2 bytes of a counting pattern; INS 02 echoes the data; INS 03 throws. */
class PatternApplet implements Applet {
  readonly name: string;
  selects = 0;
  deselects = 0;
  received: CommandApdu[] = [];
  constructor(readonly aid: Uint8Array, private readonly fci: Uint8Array = Uint8Array.of(0x6f, 0x00)) {
    this.name = toHex(aid);
  }
  select(): Uint8Array {
    this.selects++;
    return this.fci;
  }
  deselect(): void {
    this.deselects++;
  }
  process(command: CommandApdu): Uint8Array {
    this.received.push(command);
    if (command.ins === 0x01) return Uint8Array.from({ length: (command.p1 << 8) | command.p2 }, (_, i) => i & 0xff);
    if (command.ins === 0x02) return command.data;
    if (command.ins === 0x03) throw new Error('bug in applet');
    throw new SwError(SW.INS_NOT_SUPPORTED);
  }
}

const AID_A = fromHex('A000000001010101');
const AID_B = fromHex('A000000001020202');
const AID_C = fromHex('B0000000050505');

function card() {
  const a = new PatternApplet(AID_A, fromHex('6F03840101'));
  const b = new PatternApplet(AID_B);
  const c = new PatternApplet(AID_C);
  const errors: unknown[] = [];
  const os = new CardOs([a, b, c], { onInternalError: (e) => errors.push(e) });
  os.powerOn();
  const send = async (hex: string) => parseResponseApdu(await os.transmit(fromHex(hex)));
  return { os, a, b, c, send, errors };
}

const pattern = (n: number, from = 0) => toHex(Uint8Array.from({ length: n }, (_, i) => (i + from) & 0xff));

describe('card OS: SELECT by DF name', () => {
  it('selects by full AID and answers the applet\'s FCI', async () => {
    const { send, os, a } = card();
    const withLe = await send('00A4040008A00000000101010100');
    expect(withLe.sw).toBe(0x9000);
    expect(toHex(withLe.data)).toBe('6f03840101');
    expect(os.selectedApplet).toBe(a);
    // Without Le the FCI comes all the same, as from a JavaCard over T=1 (yubico-piv-tool relies on it).
    const r = await send('00A4040008A000000001010101');
    expect(r.sw).toBe(0x9000);
    expect(toHex(r.data)).toBe('6f03840101');
  });

  it('selects by partial AID, first then next occurrence', async () => {
    const { send, os, a, b } = card();
    expect((await send('00A4040005A00000000100')).sw).toBe(0x9000);
    expect(os.selectedApplet).toBe(a);
    expect((await send('00A4040205A00000000100')).sw).toBe(0x9000);
    expect(os.selectedApplet).toBe(b);
    expect(a.deselects).toBe(1);
    expect((await send('00A4040205A00000000100')).sw).toBe(0x6a82);
    expect(os.selectedApplet).toBe(b);
  });

  it('P2 0C answers no data; an unknown AID gives 6A82 and keeps the selection', async () => {
    const { send, os, c } = card();
    expect(toHex((await send('00A4040C07B000000005050500')).data)).toBe('');
    expect(os.selectedApplet).toBe(c);
    expect((await send('00A4040006F0565343000100')).sw).toBe(0x6a82);
    expect(os.selectedApplet).toBe(c);
  });

  it.each([
    ['select MF by file id', '00A40000023F00', 0x6a82],
    ['P1 not supported', '00A4050005A000000001', 0x6a86],
    ['P2 RFU', '00A4041005A000000001', 0x6a86],
    ['empty DF name', '00A40400', 0x6700],
    ['DF name of 17 bytes', `00A4040011${'A0'.repeat(17)}`, 0x6700],
  ])('%s → %s', async (_name, apdu, sw) => {
    const { send } = card();
    expect((await send(apdu)).sw).toBe(sw);
  });
});

describe('card OS: class and instruction', () => {
  it.each([
    ['CLA FF', 'FF01000000', 0x6e00],
    ['CLA 20 (RFU)', '2001000000', 0x6e00],
    ['logical channel 1', '0101000000', 0x6881],
    ['logical channel 4 (further interindustry)', '4001000000', 0x6881],
    ['secure messaging', '0C01000000', 0x6882],
    ['malformed length', '000100000300', 0x6700],
    ['too short', '0001', 0x6700],
    ['empty', '', 0x6700],
  ])('%s → %s', async (_name, apdu, sw) => {
    const { send } = card();
    await send('00A4040008A000000001010101');
    expect((await send(apdu)).sw).toBe(sw);
  });

  it('without a selected applet: 6D00 for interindustry and 6E00 for proprietary commands', async () => {
    const { send } = card();
    expect((await send('00CA000000')).sw).toBe(0x6d00);
    expect((await send('80CA000000')).sw).toBe(0x6e00);
  });

  it('an exception inside an applet becomes 6F00, reported to the hook, never thrown', async () => {
    const { send, errors } = card();
    await send('00A4040008A000000001010101');
    const r = await send('0003000000');
    expect(r.sw).toBe(0x6f00);
    expect(errors).toHaveLength(1);
    expect((await send('0001000400')).sw).toBe(0x9000);
  });

  it('refuses commands while powered off and forgets the selection across a reset', async () => {
    const { send, os, a } = card();
    await send('00A4040008A000000001010101');
    os.powerOff();
    expect((await send('0001000400')).sw).toBe(0x6985);
    expect(a.deselects).toBe(1);
    os.reset();
    expect(os.selectedApplet).toBeUndefined();
    expect((await send('0001000400')).sw).toBe(0x6d00);
  });
});

describe('card OS: response chaining (61xx / GET RESPONSE)', () => {
  it('splits a 600-byte answer over Le 256 into 6100, 6100, 9000', async () => {
    const { send } = card();
    await send('00A4040008A000000001010101');
    const first = await send('0001025800'); // 0x258 = 600 bytes, Le 256
    expect(first.sw).toBe(0x6100);
    expect(toHex(first.data)).toBe(pattern(256));
    const second = await send('00C0000000');
    expect(second.sw).toBe(0x6158); // 88 bytes left
    expect(toHex(second.data)).toBe(pattern(256, 256));
    const third = await send('00C0000058');
    expect(third.sw).toBe(0x9000);
    expect(toHex(third.data)).toBe(pattern(88, 512));
  });

  it('answers fewer bytes than Le asks for, and honours a small Le', async () => {
    const { send } = card();
    await send('00A4040008A000000001010101');
    expect(toHex((await send('0001000A00')).data)).toBe(pattern(10));
    const small = await send('0001000A04');
    expect(small.sw).toBe(0x6106);
    expect(toHex(small.data)).toBe(pattern(4));
    const rest = await send('00C0000004');
    expect(rest.sw).toBe(0x6102);
    expect(toHex((await send('00C0000002')).data)).toBe(pattern(2, 8));
  });

  it('with no Le, up to 256 bytes come at once and the rest is announced by 61xx', async () => {
    const { send } = card();
    await send('00A4040008A000000001010101');
    const r = await send('00010005');
    expect(r.sw).toBe(0x9000);
    expect(toHex(r.data)).toBe(pattern(5));
    const long = await send('0001012C'); // 300 bytes asked for by the test applet, no Le
    expect(long.sw).toBe(0x612c);
    expect(toHex(long.data)).toBe(pattern(256));
    expect(toHex((await send('00C000002C')).data)).toBe(pattern(44, 256));
  });

  it('an extended Le gets the whole answer at once', async () => {
    const { send } = card();
    await send('00A4040008A000000001010101');
    const r = await send('0001025800FFFF');
    expect(r.sw).toBe(0x9000);
    expect(r.data).toHaveLength(600);
  });

  it('GET RESPONSE without pending data → 6985; another command drops pending data', async () => {
    const { send } = card();
    await send('00A4040C08A000000001010101');
    expect((await send('00C0000000')).sw).toBe(0x6985);
    expect((await send('0001012C00')).sw).toBe(0x612c);
    expect((await send('0002000001AA00')).sw).toBe(0x9000);
    expect((await send('00C0000000')).sw).toBe(0x6985);
    expect((await send('0001012C00')).sw).toBe(0x612c);
    expect((await send('00C0010000')).sw).toBe(0x6a86);
  });
});

describe('card OS: command chaining (CLA bit 10)', () => {
  it('joins chained parts and hands the applet one command with the chaining bit cleared', async () => {
    const { send, a } = card();
    await send('00A4040008A000000001010101');
    expect((await send('1002000003010203')).sw).toBe(0x9000);
    expect((await send('1002000002040500')).sw).toBe(0x9000);
    const last = await send('0002000002060700');
    expect(last.sw).toBe(0x9000);
    expect(toHex(last.data)).toBe('01020304050607');
    expect(a.received).toHaveLength(1);
    expect(a.received[0]!.cla).toBe(0x00);
  });

  it('a chain of 300 bytes answered with 300 bytes goes through chaining both ways', async () => {
    const { send } = card();
    await send('00A4040008A000000001010101');
    const data = pattern(300);
    await send(`10020000FF${data.slice(0, 510)}`);
    const first = await send(`000200002D${data.slice(510)}00`);
    expect(first.sw).toBe(0x612c);
    const rest = await send('00C000002C');
    expect(toHex(first.data) + toHex(rest.data)).toBe(data);
  });

  it('a different command in the middle of a chain → 6883 and the chain is dropped', async () => {
    const { send, a } = card();
    await send('00A4040008A000000001010101');
    await send('1002000001AA');
    expect((await send('0001000100')).sw).toBe(0x6883);
    expect((await send('0002000001BB00')).data).toEqual(fromHex('BB'));
    expect(a.received.map((c) => toHex(c.data))).toEqual(['bb']);
  });

  it('refuses a chain longer than the limit with 6A84', async () => {
    const a = new PatternApplet(AID_A);
    const os = new CardOs([a], { maxChainedLength: 300 });
    os.powerOn();
    const send = async (hex: string) => parseResponseApdu(await os.transmit(fromHex(hex)));
    await send('00A4040008A000000001010101');
    expect((await send(`10020000FF${'00'.repeat(255)}`)).sw).toBe(0x9000);
    expect((await send(`1002000064${'00'.repeat(100)}`)).sw).toBe(0x6a84);
    expect((await send('0002000001CC00')).data).toEqual(fromHex('CC'));
  });
});

describe('card OS: construction and ATR', () => {
  it('refuses duplicate and malformed AIDs', () => {
    expect(() => new CardOs([new PatternApplet(AID_A), new PatternApplet(AID_A)])).toThrow(/share the AID/);
    expect(() => new CardOs([new PatternApplet(fromHex('A000'))])).toThrow(/5 to 16 bytes/);
  });

  it('builds a T=1 ATR whose check byte makes T0..TCK XOR to zero', () => {
    const atr = buildAtr();
    expect(atr[0]).toBe(0x3b);
    expect(atr.subarray(1).reduce((x, b) => x ^ b, 0)).toBe(0);
    expect(atr[1]! & 0x0f).toBe(9); // nine historical bytes
    expect(toHex(atr)).toBe('3b898131fe45805356534373c0018025');
  });
});

describe('card OS: robustness of hooks', () => {
  it('a throwing error hook does not escape transmit', async () => {
    const a = new PatternApplet(AID_A);
    const os = new CardOs([a], {
      onInternalError: () => {
        throw new Error('hook broken');
      },
    });
    os.powerOn();
    await os.transmit(fromHex('00A4040C08A000000001010101'));
    expect(Array.from(await os.transmit(fromHex('0003000000')))).toEqual([0x6f, 0x00]);
  });

  it('commands from many callers run one at a time, in arrival order', async () => {
    const { os, send } = card();
    await send('00A4040C08A000000001010101');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => os.transmit(fromHex(`00020000010${i % 10}00`))));
    expect(answers.map((r) => r[0])).toEqual(Array.from({ length: 20 }, (_, i) => i % 10));
  });
});
