// Test helpers for the PC/SC API: a card that echoes APDUs with 9000 and counts what happens at its
// contacts, promise-state probes, and an assertion for PcscError rejections.
import assert from 'node:assert/strict';
import type { CardSource } from '../../src/apdu/index.js';
import { PcscError, type PcscErrorName } from '../../src/reader-driver/index.js';

/** TS 3B, T0 80 (TD1 follows), TD1 80 (TD2 follows), TD2 01 (T=1), TCK 01. */
export const T1_ATR = Uint8Array.of(0x3b, 0x80, 0x80, 0x01, 0x01);

export class EchoCard implements CardSource {
  readonly atr = T1_ATR;
  powerOns = 0;
  powerOffs = 0;
  resets = 0;
  /** The INS byte of each command, in the order the commands reached the card. */
  readonly received: number[] = [];
  /** Most exchanges ever in flight at once. */
  maxInFlight = 0;
  failPowerOn = false;
  failTransmit = false;
  #inFlight = 0;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;

  powerOn(): void {
    if (this.failPowerOn) throw new Error('no answer to reset');
    this.powerOns += 1;
  }
  powerOff(): void {
    this.powerOffs += 1;
  }
  reset(): void {
    this.resets += 1;
  }

  /** Holds every exchange at the card until `release()`. */
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }
  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    this.received.push(command[1] ?? -1);
    this.#inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    try {
      if (this.#gate !== undefined) await this.#gate;
      if (this.failTransmit) throw new Error('link dropped');
      const response = new Uint8Array(command.length + 2);
      response.set(command);
      response.set([0x90, 0x00], command.length);
      return response;
    } finally {
      this.#inFlight -= 1;
    }
  }
}

/** A command APDU whose INS byte tells it apart in `EchoCard.received`. */
export function apdu(ins: number): Uint8Array {
  return Uint8Array.of(0x00, ins, 0x00, 0x00);
}

/** Lets every pending promise continuation and I/O callback run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface Probe<T> {
  settled: boolean;
  value?: T;
  error?: unknown;
}

/** Watches a promise without awaiting it, so a test can assert that it is still pending. */
export function probe<T>(promise: Promise<T>): Probe<T> {
  const state: Probe<T> = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Asserts that `promise` rejects with the PcscError `name` (its code, value and class). */
export async function expectPcscError(promise: Promise<unknown>, name: PcscErrorName): Promise<PcscError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  // node:assert, not vitest's expect: benchmarks import the helpers' index too, outside vitest.
  assert.ok(error instanceof PcscError, `expected a PcscError ${name}, got ${String(error)}`);
  assert.equal(error.pcscName, name);
  assert.equal(error.code, `pcsc.${name}`);
  return error;
}
