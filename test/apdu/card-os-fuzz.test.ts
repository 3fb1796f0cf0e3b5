// Fuzz: 100,000 random byte strings into the card OS with the VSC applet. Every answer must be a
// well-formed response APDU with a valid status word, and nothing may throw.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isValidStatusWord } from '../../src/apdu/status-words.js';
import { bytesToUint, fromHex } from '../../src/bytes/index.js';
import { SELECT_VSC, vscFixture } from '../support/index.js';

// Half pure noise, half noise shaped like the commands the card knows, to reach the deep paths.
const header = fc.tuple(
  fc.constantFrom(0x00, 0x10, 0x80, 0x90, 0x01, 0x0c, 0xff, 0x40),
  fc.constantFrom(0xa4, 0xc0, 0x20, 0x22, 0x24, 0x26, 0xca, 0x00),
  fc.constantFrom(0x00, 0x01, 0x04, 0x02),
  fc.constantFrom(0x00, 0x0c, 0x02),
);
const shaped = fc
  .tuple(header, fc.uint8Array({ maxLength: 40 }), fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), fc.boolean())
  .map(([[cla, ins, p1, p2], data, le, lcField]) => {
    const lc = lcField && data.length > 0 ? [data.length] : [];
    return Uint8Array.from([cla, ins, p1, p2, ...lc, ...data, ...(le === undefined ? [] : [le])]);
  });
const anyCommand = fc.oneof(fc.uint8Array({ maxLength: 300 }), shaped);

describe('card OS fuzz', () => {
  it('answers 100,000 random commands with well-formed responses and never throws', async () => {
    const { os, send } = vscFixture({ counter: 1000n });
    await send(SELECT_VSC);
    const commands = fc.sample(anyCommand, { numRuns: 100_000, seed: 0x5eed });
    let signed = 0;
    for (const command of commands) {
      const response = await os.transmit(command);
      expect(response.length).toBeGreaterThanOrEqual(2);
      const sw = (response[response.length - 2]! << 8) | response[response.length - 1]!;
      if (!isValidStatusWord(sw)) throw new Error(`invalid status word ${sw.toString(16)} for ${Buffer.from(command).toString('hex')}`);
      // A short Le never gets more than 256 bytes back.
      expect(response.length - 2).toBeLessThanOrEqual(256);
      if (command[0] === 0x80 && command[1] === 0x24 && sw === 0x9000) signed++;
      // The card must still be able to answer after whatever came before.
      if (command[1] === 0xa4 && sw === 0x9000) await send(SELECT_VSC);
    }
    await send(SELECT_VSC);
    const counter = await send('8022000010');
    expect(counter.sw).toBe(0x9000);
    // The counter moved exactly once per successful signature, whatever the noise did.
    expect(bytesToUint(counter.data)).toBe(1000n + BigInt(signed));
    expect((await send(`8024000020${'11'.repeat(32)}00`)).sw).toBe(0x9000);
  }, 120_000);

  it('survives random command sequences with chaining and pending responses', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyCommand, { minLength: 1, maxLength: 12 }), async (sequence) => {
        const { os, send } = vscFixture();
        await send(SELECT_VSC);
        for (const command of sequence) {
          const response = await os.transmit(command);
          const sw = (response[response.length - 2]! << 8) | response[response.length - 1]!;
          expect(isValidStatusWord(sw)).toBe(true);
        }
        // Afterwards SELECT works again: at once, or after 6883 has ended a dangling chain.
        let reselect = await os.transmit(fromHex(SELECT_VSC));
        if (reselect[0] === 0x68) {
          expect(Array.from(reselect)).toEqual([0x68, 0x83]);
          reselect = await os.transmit(fromHex(SELECT_VSC));
        }
        expect(Array.from(reselect)).toEqual([0x90, 0x00]);
      }),
      { numRuns: 2000, seed: 42 },
    );
  });
});
