// What watching a dongle costs (patent 004 [0106] in-use: the card challenges its dongle periodically, Fig. 14
// step 1211; DESIGN.md "Dongle-backed card": every second by default): the CPU this process spends while a real
// watchDongle runs, from process.cpuUsage() around it. Everything else this process does in that time counts
// too, so run it alone.
import { DongleError, watchDongle, type ChallengeTable, type Dongle, type DongleIdentity } from '../src/dongle-backend/index.js';
import { assertInteger } from '../src/errors/index.js';

export interface PollingCpuOptions {
  readonly intervalMs: number;
  readonly durationMs: number;
  /** Challenge from this table instead of with signed nonces. */
  readonly challenge?: ChallengeTable;
}

export interface PollingCpu {
  /** Challenges the dongle was asked (each is one dongle signature, in either form). */
  readonly challenges: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  /** (user + system) / wall time: 100 is one core busy all the time. */
  readonly cpuPercentOfOneCore: number;
}

/** `dongle` with its signatures counted. */
function counting(dongle: Dongle): { dongle: Dongle; count: () => number } {
  let signatures = 0;
  const counted: Dongle = {
    uri: dongle.uri,
    identify: () => dongle.identify(),
    ensureKey: () => dongle.ensureKey(),
    sign: (message) => {
      signatures += 1;
      return dongle.sign(message);
    },
    read: (slot) => dongle.read(slot),
    write: (slot, bytes) => dongle.write(slot, bytes),
    close: () => dongle.close(),
  };
  return { dongle: counted, count: () => signatures };
}

/**
 * Watches `dongle` for `durationMs`, challenging it every `intervalMs`, and returns the CPU spent. The dongle
 * must answer throughout: a failure rejects, since a removed card's figures would mean nothing.
 */
export async function measurePollingCpu(dongle: Dongle, identity: DongleIdentity, options: PollingCpuOptions): Promise<PollingCpu> {
  const { intervalMs, durationMs } = options;
  assertInteger('the polling interval in ms', intervalMs, 1, 2 ** 31 - 1);
  assertInteger('the duration in ms', durationMs, 1, 2 ** 31 - 1);
  const { dongle: counted, count } = counting(dongle);
  let gone: string | undefined;
  const wallStart = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const watch = watchDongle({
    dongle: counted,
    identity,
    intervalMs,
    ...(options.challenge === undefined ? {} : { challenge: options.challenge }),
    onGone: (reason) => (gone = reason),
  });
  // A ref'd timer of our own: the watch's timers are unref'd and would not keep the benchmark alive.
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  watch.stop();
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  if (gone !== undefined) throw new DongleError('bench', `the dongle stopped answering during the benchmark: ${gone}`);
  const cpuUserMs = cpu.user / 1000;
  const cpuSystemMs = cpu.system / 1000;
  return { challenges: count(), cpuUserMs, cpuSystemMs, cpuPercentOfOneCore: ((cpuUserMs + cpuSystemMs) / wallMs) * 100 };
}

/**
 * The same process doing nothing for `durationMs` but a timer every `intervalMs`: the baseline to subtract. The
 * benchmark runs under tsx, whose loader alone keeps a process at about 1 % of a core; a card process runs the
 * compiled CLI and has no such cost, so only the difference is polling's.
 */
export async function measureIdleCpu(intervalMs: number, durationMs: number): Promise<number> {
  const wallStart = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const timer = setInterval(() => undefined, intervalMs);
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  clearInterval(timer);
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  return ((cpu.user + cpu.system) / 1000 / wallMs) * 100;
}
