// The demo tells a true story: what it narrates is what the card and the reader did.
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/demo.js';

describe('demo', () => {
  it('inserts, uses and removes a card through the in-process reader, with verified signatures', async () => {
    const lines: string[] = [];
    expect(await runDemo({ say: (line) => lines.push(line), pcscd: false })).toBe(0);
    const text = lines.join('\n');
    expect(text).toContain('SCardGetStatusChange → "VSC Virtual Reader 00": empty');
    expect(text).toMatch(/wakes up: card present, ATR 3B 89 81 31 FE 45/);
    expect(text).toContain('counter used 0; the signature over SHA-256(h ‖ 0) verifies');
    expect(text).toContain('counter used 1; the signature over SHA-256(h ‖ 1) verifies');
    expect(text).toContain('counter is now 2');
    expect(text).toContain('← 6A86 incorrect parameters P1-P2');
    expect(text).toContain('SCardGetStatusChange wakes up again: empty');
    expect(text).toContain('SCardTransmit on the old handle → SCARD_W_REMOVED_CARD');
    expect(text).not.toContain('DOES NOT verify');
  });
});
