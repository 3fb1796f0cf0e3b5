// The VSC applet against the rental patent's worked examples (003 [0054]-[0057], [0098]-[0100]).
import { describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToUint, concatBytes, fromHex, toHex, utf8 } from '../../../src/bytes/index.js';
import { COUNTER_MAX, encodeCounter } from '../../../src/apdu/vsc/index.js';
import { SELECT_VSC, TEST_PUBLIC_KEY, vscFixture } from '../../support/index.js';

const hashHex = (text: string): string => toHex(sha256(utf8(text)));

describe('VSC applet: patent 003 trace [0054]-[0055]', () => {
  it('signs hash(hash("m1"), 6) then hash(hash("m2"), 7), after which GetCounter is 8', async () => {
    const { send } = vscFixture({ counter: 6n });
    expect((await send(SELECT_VSC)).sw).toBe(0x9000);

    const first = await send(`8024000020${hashHex('m1')}00`);
    const second = await send(`8024000020${hashHex('m2')}00`);
    const counter = await send('8022000010');

    expect(first.sw).toBe(0x9000);
    expect(second.sw).toBe(0x9000);
    expect(bytesToUint(first.data.subarray(0, 16))).toBe(6n);
    expect(bytesToUint(second.data.subarray(0, 16))).toBe(7n);
    expect(bytesToUint(counter.data)).toBe(8n);
    expect(counter.data).toHaveLength(16);

    // Expected signatures: Ed25519 (RFC 8032 TEST 1 key) over SHA-256(SHA-256(m) ‖ counter as 16 bytes).
    expect(toHex(first.data.subarray(16))).toBe(
      'aaf946a6a5b19ef9a201a15085aa0bf22ba6bbfb2011ba7239243cc622f8ad61476e197572398a464bfa8d3af5d855f10a898694a7257b5fcc5e0d01dd418d08',
    );
    expect(toHex(second.data.subarray(16))).toBe(
      'e14c2e20be9fdf09ef6741d80dc0e344347a7edb7ab7d56d5df2f6cf90873cc4f6ff50b2501d7fbd019988eea8bec123e29b8fe44c190fc6875edb9315db730e',
    );
    // And independently: the signatures verify with @noble over the digests the patent names.
    const digest1 = sha256(concatBytes(sha256(utf8('m1')), encodeCounter(6n)));
    const digest2 = sha256(concatBytes(sha256(utf8('m2')), encodeCounter(7n)));
    expect(ed25519.verify(first.data.subarray(16), digest1, TEST_PUBLIC_KEY)).toBe(true);
    expect(ed25519.verify(second.data.subarray(16), digest2, TEST_PUBLIC_KEY)).toBe(true);
    expect(ed25519.verify(first.data.subarray(16), digest2, TEST_PUBLIC_KEY)).toBe(false);
  });
});

describe('VSC applet: counter limit [0057]', () => {
  it('from 2^128-2 signs once, then refuses with 6985 and GET COUNTER stays 2^128-1', async () => {
    const { send } = vscFixture({ counter: COUNTER_MAX - 1n });
    await send(SELECT_VSC);
    const h = hashHex('last');

    const last = await send(`8024000020${h}00`);
    expect(last.sw).toBe(0x9000);
    expect(bytesToUint(last.data.subarray(0, 16))).toBe(COUNTER_MAX - 1n);

    const refused = await send(`8024000020${h}00`);
    expect(refused.sw).toBe(0x6985);
    expect(refused.data).toHaveLength(0);
    const again = await send(`8024000020${h}00`);
    expect(again.sw).toBe(0x6985);

    const counter = await send('8022000010');
    expect(toHex(counter.data)).toBe('ff'.repeat(16));
  });
});

describe('VSC applet: universal key [0098]-[0100]', () => {
  it('a universal card signs hash(h, serial, counter) under P1 01 and refuses P1 00 with 6A86', async () => {
    const { send } = vscFixture({ keyMode: 'universal', serial: 'SN-0042', counter: 6n });
    await send(SELECT_VSC);
    const h = hashHex('m1');

    const refused = await send(`8024000020${h}00`);
    expect(refused.sw).toBe(0x6a86);
    expect(bytesToUint((await send('8022000010')).data)).toBe(6n);

    const signed = await send(`8024010020${h}00`);
    expect(signed.sw).toBe(0x9000);
    expect(toHex(signed.data.subarray(16))).toBe(
      '16dc5369d1b2121d34e9a70379fc799874d93d715791ea7ae5691b4c090ae772ab8d8d14e987cb996a8e0b20cd10bede20d72845a00161357c76f975d21bab0d',
    );
    const digest = sha256(concatBytes(sha256(utf8('m1')), utf8('SN-0042'), encodeCounter(6n)));
    expect(ed25519.verify(signed.data.subarray(16), digest, TEST_PUBLIC_KEY)).toBe(true);
    expect(toHex((await send('8020000000')).data)).toBe(toHex(utf8('SN-0042')));
  });

  it('an individual-key card refuses P1 01 with 6A86 and does not move the counter', async () => {
    const { send } = vscFixture({ counter: 3n });
    await send(SELECT_VSC);
    expect((await send(`8024010020${hashHex('m1')}00`)).sw).toBe(0x6a86);
    expect((await send(`8024020020${hashHex('m1')}00`)).sw).toBe(0x6a86);
    expect(bytesToUint((await send('8022000010')).data)).toBe(3n);
  });
});

describe('VSC applet: interface', () => {
  it('GET SERIAL NUMBER, GET PUBLIC KEY answer the card\'s serial and key', async () => {
    const { send } = vscFixture({ serial: 'ÄBC-1' });
    await send(SELECT_VSC);
    const serial = await send('8020000000');
    expect(new TextDecoder().decode(serial.data)).toBe('ÄBC-1');
    const key = await send('8026000020');
    expect(key.sw).toBe(0x9000);
    expect(toHex(key.data)).toBe(toHex(TEST_PUBLIC_KEY));
  });

  it.each([
    ['wrong CLA', '0022000010', 0x6e00],
    ['unknown INS', '8028000000', 0x6d00],
    ['GET COUNTER with P1', '8022010010', 0x6a86],
    ['GET COUNTER with data', '802200000100', 0x6700],
    ['SIGN with a 31-byte hash', `802400001F${'00'.repeat(31)}`, 0x6700],
    ['SIGN with a 33-byte hash', `8024000021${'00'.repeat(33)}`, 0x6700],
    ['SIGN without data', '8024000000', 0x6700],
    ['SIGN with P2', `8024000120${'00'.repeat(32)}`, 0x6a86],
  ])('%s → %s', async (_name, apdu, sw) => {
    const { send } = vscFixture({ counter: 5n });
    await send(SELECT_VSC);
    expect((await send(apdu)).sw).toBe(sw);
    expect(bytesToUint((await send('8022000010')).data)).toBe(5n);
  });

  it('answers 6E00 to its class before the applet is selected', async () => {
    const { send } = vscFixture();
    expect((await send('8022000010')).sw).toBe(0x6e00);
  });

  it('a failed counter commit refuses the signature with 6581 and leaves the counter', async () => {
    let fail = true;
    const { send } = vscFixture({
      counter: 9n,
      commit: () => {
        if (fail) throw new Error('disk full');
      },
    });
    await send(SELECT_VSC);
    const h = hashHex('x');
    const refused = await send(`8024000020${h}00`);
    expect(refused.sw).toBe(0x6581);
    expect(refused.data).toHaveLength(0);
    expect(bytesToUint((await send('8022000010')).data)).toBe(9n);
    fail = false;
    expect(bytesToUint((await send(`8024000020${h}00`)).data.subarray(0, 16))).toBe(9n);
  });

  it('commits the next counter value before the signature is released', async () => {
    const committed: bigint[] = [];
    const { send } = vscFixture({ counter: 1n, commit: (next) => void committed.push(next) });
    await send(SELECT_VSC);
    await send(`8024000020${hashHex('a')}00`);
    await send(`8024000020${hashHex('b')}00`);
    expect(committed).toEqual([2n, 3n]);
  });

  it('a GET COUNTER sent while a slow SIGN AND INCREMENT runs waits for it and sees the new value', async () => {
    const { os, send } = vscFixture({ counter: 7n, commit: () => new Promise((r) => setTimeout(r, 20)) });
    await send(SELECT_VSC);
    const sign = os.transmit(fromHex(`8024000020${hashHex('slow')}00`));
    const counter = os.transmit(fromHex('8022000010'));
    const [signed, after] = await Promise.all([sign, counter]);
    expect(bytesToUint(signed.subarray(0, 16))).toBe(7n);
    expect(bytesToUint(after.subarray(0, 16))).toBe(8n);
  });

  it('a queued command is copied at once: reusing the caller\'s buffer changes nothing', async () => {
    const { os, send } = vscFixture({ serial: 'SN-7', commit: () => new Promise((r) => setTimeout(r, 10)) });
    await send(SELECT_VSC);
    const sign = os.transmit(fromHex(`8024000020${hashHex('x')}00`));
    const buffer = fromHex('8020000000');
    const serial = os.transmit(buffer);
    buffer.set([0x80, 0x22, 0x00, 0x00, 0x10]);
    await sign;
    expect(new TextDecoder().decode((await serial).subarray(0, -2))).toBe('SN-7');
  });

  it('concurrent SIGN AND INCREMENTs each get their own counter value', async () => {
    const { send, card } = vscFixture({ counter: 100n, commit: () => new Promise((r) => setTimeout(r, Math.random() * 3)) });
    await send(SELECT_VSC);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => send(`8024000020${hashHex(`m${i}`)}00`)));
    const counters = results.map((r) => bytesToUint(r.data.subarray(0, 16)));
    expect(new Set(counters).size).toBe(40);
    expect([...counters].sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: 40 }, (_, i) => 100n + BigInt(i)));
    expect(card.counter()).toBe(140n);
    // Also straight on the card object, bypassing the card OS queue.
    const direct = await Promise.all(Array.from({ length: 10 }, () => card.signAndIncrement(fromHex(hashHex('d')))));
    expect(new Set(direct.map((r) => r.counter)).size).toBe(10);
  });
});
