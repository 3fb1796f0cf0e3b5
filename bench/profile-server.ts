// `npx tsx bench/profile-server.ts [--cpu-prof DIR]`: one SQLite server process with 200 cards under
// the cycle load, printed; for profiling the server, BENCHMARKS.md untouched.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex } from '../src/bytes/index.js';
import { makeBenchCards, loadSqliteCards } from './card-rows.js';
import { CLIENTS, cpuPer1000, runCycles } from './server-cycles.js';
import { runVsc, startServerProcess } from './server-process.js';

const profile = process.argv.indexOf('--cpu-prof');
const nodeArgs = profile === -1 ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.argv[profile + 1]!}`];
const dir = mkdtempSync(join(tmpdir(), 'vsc-profile-'));
try {
  const bench = await makeBenchCards(CLIENTS);
  const data = join(dir, 'server');
  await runVsc(['server', 'init', '--data', data]);
  loadSqliteCards(join(data, 'vsc.db'), bench);
  const server = await startServerProcess({ data, nodeArgs });
  try {
    const figure = await runCycles('SQLite, 200 cards', bench, [server], fromHex(readFileSync(join(data, 'master.key'), 'utf8').trim()));
    console.log(`${figure.cyclesPerSecond.toFixed(0)} cycles/s, p50 ${figure.p50Ms.toFixed(1)} ms, p99 ${figure.p99Ms.toFixed(1)} ms, server CPU ${cpuPer1000(figure).toFixed(2)} s per 1,000 cycles, load CPU ${((figure.loadCpuSeconds / figure.cycles) * 1000).toFixed(2)} s per 1,000, failures ${figure.failures}`);
  } finally {
    await server.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
