// Dongle-backed cards (patent 004 claim 10, Fig. 14; DESIGN.md "Dongle-backed card"), per kind of dongle:
//   - challenge-response round trips per second (Fig. 14 with signed nonces: a fresh nonce, the dongle key's
//     signature, its check against the dongle's public key);
//   - SIGN AND INCREMENT per second with the counter on the dongle (each value written to the dongle before its
//     signature leaves the card), against raw Ed25519 signing measured in the same run;
//   - the CPU the card process spends watching the dongle at the default interval (goal: < 1 % of a core).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCommandApdu } from '../src/apdu/index.js';
import { utf8 } from '../src/bytes/index.js';
import { vscCommands } from '../src/card-client/index.js';
import { RunningCard } from '../src/card/index.js';
import { ed25519KeyFromSeed, generateEd25519Seed } from '../src/crypto/index.js';
import {
  answersSignatureChallenge, DEFAULT_POLL_INTERVAL_MS, DongleBacking, dongleSecrets, initDongleCard, openDongle, type Dongle,
} from '../src/dongle-backend/index.js';
import { measureIdleCpu, measurePollingCpu, type PollingCpu } from './dongle-polling.js';
import { measureRate } from './stats.js';
import { softHsmDongleFixture, swtpmDongleFixture, type DongleFixture } from '../test/support/index.js';

/** A kind of dongle the benchmark can make: its URI (PIN by pin-source) and what the process needs to reach it. */
export interface DongleBenchTarget {
  readonly name: string;
  readonly uri: string;
  /** Set in this process's environment while the target is measured (SOFTHSM2_CONF, TPM2_PKCS11_*). */
  readonly env: Readonly<Record<string, string>>;
  cleanup(): Promise<void>;
}

export interface DongleFigures {
  readonly name: string;
  readonly challengesPerSecond: number;
  readonly signsPerSecond: number;
  readonly rawSignsPerSecond: number;
  readonly polling: PollingCpu;
  /** The same process idle with the same timer, measured just before: subtracted from the polling figure. */
  readonly idlePercent: number;
}

const PASSWORD = 'bench password';

async function withEnv<T>(env: Readonly<Record<string, string>>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  Object.assign(process.env, env);
  try {
    return await body();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

const secrets = dongleSecrets(async () => {
  throw new Error('the benchmark names every PIN in the URI');
});

export async function measureDongle(target: DongleBenchTarget, options: { rateMs?: number; pollingMs?: number } = {}): Promise<DongleFigures> {
  const rateMs = options.rateMs ?? 3_000;
  return withEnv(target.env, async () => {
    let dongle: Dongle = await openDongle(target.uri, secrets);
    try {
      const identity = await dongle.ensureKey();
      const challengesPerSecond = await measureRate(async () => {
        if (!(await answersSignatureChallenge(dongle, identity))) throw new Error(`${target.name} answered a challenge wrong`);
      }, rateMs);
      if ((await dongle.read('card')) === undefined) await initDongleCard({ dongle, serial: `BENCH-${target.name}`, password: utf8(PASSWORD) });
      await dongle.close();

      dongle = await openDongle(target.uri, secrets);
      const card = await RunningCard.open(new DongleBacking({ dongle, password: utf8(PASSWORD) }));
      let signsPerSecond: number;
      try {
        card.os.powerOn();
        await card.os.transmit(encodeCommandApdu(vscCommands.select()));
        const sign = encodeCommandApdu(vscCommands.signAndIncrement(new Uint8Array(randomBytes(32))));
        signsPerSecond = await measureRate(async () => {
          const response = await card.os.transmit(sign);
          if (response[response.length - 2] !== 0x90) throw new Error(`${target.name}: SIGN AND INCREMENT failed`);
        }, rateMs);
        await card.giveBack();
      } finally {
        await card.destroy(); // closes the dongle
      }
      const seed = generateEd25519Seed();
      const raw = ed25519KeyFromSeed(seed);
      seed.fill(0);
      const message = new Uint8Array(32);
      const rawSignsPerSecond = await measureRate(() => raw.sign(message), rateMs);

      dongle = await openDongle(target.uri, secrets);
      const watched = await dongle.identify();
      const pollingMs = options.pollingMs ?? 20_000;
      const idlePercent = await measureIdleCpu(DEFAULT_POLL_INTERVAL_MS, pollingMs);
      const polling = await measurePollingCpu(dongle, watched, { intervalMs: DEFAULT_POLL_INTERVAL_MS, durationMs: pollingMs });
      return { name: target.name, challengesPerSecond, signsPerSecond, rawSignsPerSecond, polling, idlePercent };
    } finally {
      await dongle.close();
    }
  });
}

/** The kinds `npm run bench` measures, each started when its turn comes. */
export function dongleBenchTargets(): { readonly name: string; start(): Promise<DongleBenchTarget> }[] {
  const fromFixture = (name: string, make: () => Promise<DongleFixture>) => ({
    name,
    start: async (): Promise<DongleBenchTarget> => {
      const fixture = await make();
      return { name, uri: fixture.uri, env: fixture.env, cleanup: () => fixture.cleanup() };
    },
  });
  return [
    { name: 'emulated', start: async () => emulatedBenchTarget() },
    fromFixture('SoftHSM2 2.6 token', () => softHsmDongleFixture('bench')),
    fromFixture('TPM 2.0 through tpm2-pkcs11 1.9 (swtpm)', () => swtpmDongleFixture('bench')),
  ];
}

/** The emulated dongle, in a temp directory. */
export function emulatedBenchTarget(): DongleBenchTarget {
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-dongle-'));
  const passphrase = join(dir, 'passphrase');
  writeFileSync(passphrase, 'bench passphrase\n', { mode: 0o600 });
  return { name: 'emulated', uri: `emulated:${join(dir, 'stick')}?pin-source=file:${passphrase}`, env: {}, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

const rate = (value: number): string => `${Math.round(value).toLocaleString('en-US')}/s`;

/** The BENCHMARKS.md section. */
export function dongleSection(figures: readonly DongleFigures[], notes: readonly string[]): string[] {
  return [
    '## Dongle-backed cards',
    '',
    '| dongle | challenge-response round trips | SIGN AND INCREMENT, counter on the dongle | ratio to raw Ed25519 signing (same run) | CPU of polling every 1 s (process while polling − the same process idle) | goal < 1 % of a core |',
    '|---|---|---|---|---|---|',
    ...figures.map((figure) => {
      const percent = Math.max(0, figure.polling.cpuPercentOfOneCore - figure.idlePercent);
      return `| ${figure.name} | ${rate(figure.challengesPerSecond)} | ${rate(figure.signsPerSecond)} | ${((figure.signsPerSecond / figure.rawSignsPerSecond) * 100).toFixed(2)} % of ${rate(figure.rawSignsPerSecond)} | ${percent.toFixed(3)} % (${figure.polling.cpuPercentOfOneCore.toFixed(3)} % − ${figure.idlePercent.toFixed(3)} %; ${figure.polling.challenges} challenges) | ${percent.toFixed(3)} of the limit; ${percent < 1 ? 'met' : 'not met'} |`;
    }),
    '',
    '- A challenge is a fresh 32-byte nonce, the dongle key\'s signature over it (RSASSA-PKCS1-v1_5 with SHA-256 on a token, Ed25519 on the emulated dongle) and its check with the public key. SIGN AND INCREMENT runs through the card OS in-process; each value is first written to the dongle\'s counter slot (a token data object, or a file fsynced and renamed), then signed: the write is what bounds the rate, and it is the price of never signing a value twice. Polling CPU is this process\'s user + system time over 20 s of a real watcher at the default 1 s interval, divided by the wall time, minus the same process\'s CPU over 20 s idle with a 1 s timer measured just before (the benchmark runs under tsx, whose loader alone costs about 1 % of a core; a card process runs the compiled CLI). The token\'s own work in another process (swtpm) is not counted.',
    ...notes.map((note) => `- ${note}`),
    '',
  ];
}
