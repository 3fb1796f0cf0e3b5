// ECDSA P-256 signing with stock pkcs11-tool against SoftHSM2 and against the emulated PIV card
// (OpenSC's module → pcscd → vpcd → `vsc card emulate`), in the same run. Goal: the card within 2x of SoftHSM2.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensurePcscd as startPcscd,
  stopPcscd,
  waitForCard,
  createSoftHsmToken,
  opensslCertificatePublicKey,
  opensslVerifyDigest,
  pkcs11Tool,
  readObject,
  requireOpenscModule,
  signDigest,
  vpcdHostWithQuickack,
  type Pkcs11Token,
  startEmulator,
} from '../test/support/index.js';
import { measurePkcs11SignRate, type Pkcs11SignRate } from './pkcs11-sign-rate.js';
import { median } from './stats.js';

/** pcscd's second vpcd reader, as the other pcscd benchmarks use; the e2e tests use the first. */
const VPCD_PORT = 35964;
const VPCD_READER = 'Virtual PCD 00 01';
/** PIN and key of a newly personalised emulated card (DESIGN.md "The PIV applet"); CKA_ID 01 is OpenSC's name for 9A. */
const PIV_PIN = '123456';
const PIV_KEY_ID = '01';
/** The goal: the card at most 2x slower than SoftHSM2. */
const GOAL_SLOWDOWN = 2;

export interface PivVersusSoftHsmOptions {
  /** Timed signing processes per token. */
  readonly iterations?: number;
}

export interface PivVersusSoftHsm {
  readonly softhsm: Pkcs11SignRate;
  readonly piv: Pkcs11SignRate;
  /** softhsm.perSecond / piv.perSecond: how many times slower the card is. */
  readonly slowdown: number;
  readonly goalSlowdown: number;
  readonly withinGoal: boolean;
  /**
   * Median wall time of `pkcs11-tool --module opensc-pkcs11.so -L` with no card in any reader: what
   * OpenSC's module and pcscd cost every process before any card is involved.
   */
  readonly openscNoCardP50Ms: number;
  /** Where the card connected to vpcd, and whether the quickack route was on. */
  readonly vpcdHost: string;
  readonly quickack: boolean;
  readonly notes: readonly string[];
}

/** One signature verified with openssl before timing, so a broken token cannot pass for a fast one. */
async function checkSigns(token: Pkcs11Token, pin: string, id: string, publicKey: Uint8Array): Promise<void> {
  const digest = new Uint8Array(createHash('sha256').update('vsc piv-vs-softhsm check').digest());
  const signature = await signDigest(token, { pin, id, digest });
  if (!(await opensslVerifyDigest(publicKey, signature, digest))) {
    throw new Error(`expected the signature of key ${id} via ${token.module} to verify with openssl, it did not`);
  }
}

/** Runs before any card is inserted (the e2e reader may hold none either: the tests are not running). */
async function measureOpenscNoCard(): Promise<number> {
  const module = requireOpenscModule();
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) {
    const start = process.hrtime.bigint();
    await pkcs11Tool({ module, select: [] }, ['-L']);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
}

/**
 * Starts pcscd if none runs, a fresh emulated card on the second vpcd reader (on 127.0.0.2 with a
 * quickack route when root can add one) and a fresh SoftHSM2 token, then times `iterations`
 * `pkcs11-tool --sign -m ECDSA` processes against each. Everything it started it stops again.
 */
export async function measurePivVersusSoftHsm(options: PivVersusSoftHsmOptions = {}): Promise<PivVersusSoftHsm> {
  const { iterations = 100 } = options;
  const notes: string[] = [];
  await startPcscd();
  const dir = await mkdtemp(join(tmpdir(), 'vsc-bench-piv-'));
  const vpcd = await vpcdHostWithQuickack();
  if (vpcd.note !== undefined) notes.push(`card on ${vpcd.host}: ${vpcd.note}; every APDU then waits ~40 ms for vpcd's delayed ACK`);
  const softhsm = await createSoftHsmToken();
  let emulator: Awaited<ReturnType<typeof startEmulator>> | undefined;
  try {
    const openscNoCardP50Ms = await measureOpenscNoCard();
    emulator = await startEmulator({ port: VPCD_PORT, host: vpcd.host, stateFile: join(dir, 'card.json') });
    await waitForCard(VPCD_READER, true);
    const card: Pkcs11Token = { module: requireOpenscModule(), select: ['--slot-description', VPCD_READER] };

    await checkSigns(softhsm, softhsm.pin, softhsm.keyId, await readObject(softhsm, 'pubkey', softhsm.keyId));
    await checkSigns(card, PIV_PIN, PIV_KEY_ID, await opensslCertificatePublicKey(await readObject(card, 'cert', PIV_KEY_ID)));

    const softhsmRate = await measurePkcs11SignRate({ module: softhsm.module, tokenArgs: softhsm.select, env: softhsm.env ?? {}, pin: softhsm.pin, id: softhsm.keyId, iterations });
    const pivRate = await measurePkcs11SignRate({ module: card.module, tokenArgs: card.select, pin: PIV_PIN, id: PIV_KEY_ID, iterations });
    const slowdown = softhsmRate.perSecond / pivRate.perSecond;
    return Object.freeze({
      softhsm: softhsmRate,
      piv: pivRate,
      slowdown,
      openscNoCardP50Ms,
      goalSlowdown: GOAL_SLOWDOWN,
      withinGoal: slowdown <= GOAL_SLOWDOWN,
      vpcdHost: vpcd.host,
      quickack: vpcd.quickack,
      notes: Object.freeze([...notes, softhsmRate.note]),
    });
  } finally {
    await emulator?.stop().catch(() => null);
    await waitForCard(VPCD_READER, false).catch(() => undefined);
    await softhsm.close();
    await vpcd.release();
    await rm(dir, { recursive: true, force: true });
    await stopPcscd();
  }
}
