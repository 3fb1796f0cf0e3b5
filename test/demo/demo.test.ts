// The demo tells a true story: what it narrates is what the card and the reader did.
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/demo.js';

/** Runs the demo (never through pcscd: the unit tests have none) and returns what it said; it must exit 0. */
async function demoText(options: { server?: boolean; dongle?: boolean; rental?: boolean; license?: boolean } = {}): Promise<string> {
  const lines: string[] = [];
  expect(await runDemo({ say: (line) => lines.push(line), pcscd: false, ...options })).toBe(0);
  return lines.join('\n');
}

describe('demo', () => {
  it('inserts, uses and removes a card through the in-process reader, with verified signatures', async () => {
    const text = await demoText({ server: false, dongle: false, rental: false });
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

  it('tells the VSC server story: enroll, insert on A, sign, remove, insert on B, crash, A refused, B recovers, destroy', { timeout: 60_000 }, async () => {
    const text = await demoText({ dongle: false, rental: false });
    expect(text).toMatch(/state: idle\n/);
    expect(text).toContain('server: idle → in-use, held by machine A\'s MUK; counter window 0..1048576');
    expect(text).toContain('counter 0; the signature verifies with the enrolled public key');
    expect(text).toContain('machine A removes it: the client refuses service first, re-seals, uploads; server: idle');
    expect(text).toContain('server: in-use on machine B, counter window 1..1048577');
    expect(text).toContain('counter 1; the signature verifies with the enrolled public key');
    expect(text).toContain('machine A tries to insert it: refused, exit code 3');
    expect(text).toContain('machine A tries to recover it: refused, exit code 5');
    expect(text).toContain('recovers it: server: idle');
    expect(text).toContain('a stranger\'s machine tries a wrong password: refused, exit code 4');
    expect(text).toMatch(/and at once again: refused, exit code 3: too many wrong passwords .* retry in 1 s/);
    expect(text).toContain('the owner on machine A, which has held the card, is not slowed');
    expect(text).toContain('the server answers with a recovery code, shown once');
    expect(text).toContain('with the right one: server: destroyed, for good');
    expect(text).toMatch(/insert\s+refused: wrong-state\n\s+recover\s+refused: muk-mismatch\n\s+recover\s+ok\s+in-use → idle/);
    expect(text).not.toContain('should not happen');
    expect(text).not.toContain('DOES NOT verify');
  });

  it('tells the dongle story: attach, sign through the reader, pull out, re-attach, lose, replace in the next epoch, old one refused', { timeout: 60_000 }, async () => {
    const text = await demoText({ server: false, rental: false });
    expect(text).toMatch(/card DEMO-DONGLE-1 is on dongle A \([0-9a-f]{16}\), sealed to A's key and the owner's password; escrowed: true/);
    expect(text).toContain('SIGN AND INCREMENT of SHA-256("first use") → counter 0 (0x0), signature verifies');
    expect(text).toContain('SIGN AND INCREMENT of SHA-256("second use") → counter 1 (0x1), signature verifies');
    expect(text).toMatch(/the dongle no longer answers.*\(\d+ ms after it was pulled, polling every 200 ms\)/);
    expect(text).toContain('"VSC Virtual Reader 02": empty');
    expect(text).toContain('SIGN AND INCREMENT of SHA-256("after re-attaching") → counter 2 (0x2), signature verifies');
    expect(text).toContain('card DEMO-DONGLE-1 is on dongle B in counter epoch 1 (values from 1·2^96); dongle A is on the signed revocation list');
    expect(text).toContain(`SIGN AND INCREMENT of SHA-256("on the replacement") → counter ${2n ** 96n} (0x1${'0'.repeat(24)}), signature verifies`);
    expect(text).toMatch(/inserting card DEMO-DONGLE-1 from dongle A → refused \(exit 3\): dongle [0-9a-f]{16} was revoked \(replaced\)/);
    expect(text).not.toContain('should not happen');
    expect(text).not.toContain('DOES NOT verify');
  });
});

describe('demo: software rental', () => {
  it('rents the example program until its threshold, and a restored old trail is refused as stale', { timeout: 60_000 }, async () => {
    const text = await demoText({ server: false, dongle: false });
    expect(text).toContain('run 1: runs in full; 1 execution(s) recorded so far');
    expect(text).toContain('run 2: runs in full; 2 execution(s) recorded so far');
    expect(text).toMatch(/run 3: limited mode \(threshold\): refused by executions<=2/);
    expect(text).toMatch(/run 4: limited mode \(trail\): trail refused: the trail ends before counter \d+ but the card is at \d+/);
  });
});

describe('demo: license containers', () => {
  it('issues a ticket, activates it into the card\'s container, counts a pay-per-use product down and refuses a clock set back', { timeout: 60_000 }, async () => {
    const text = await demoText({ server: false, dongle: false, rental: false });
    expect(text).toMatch(/its receipt in the trail: "license update [0-9a-f]{32} 10101 /);
    expect(text).toContain('the service says confirmed');
    expect(text).toMatch(/use 1: allowed, 2 left/);
    expect(text).toMatch(/use 3: allowed, 0 left/);
    expect(text).toMatch(/use 4: refused \(exhausted\)/);
    expect(text).toMatch(/clock set back a day: refused \(clock-set-back\)/);
    expect(text).toContain('from the trail: 3 uses, 3 units of product 7');
  });
});
