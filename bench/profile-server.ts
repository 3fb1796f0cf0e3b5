// `npx tsx bench/profile-server.ts [--old] [--keep] [--postgres N] [--cpu-prof DIR]`: one SQLite server
// process (or N server processes on a throw-away PostgreSQL) with 200 cards under the closed-loop cycle
// load, printed; for profiling the server, BENCHMARKS.md untouched.
// --old runs the code before issue 18 from a git worktree (baseline-server.ts); --keep gives each client
// kept connections (a ChannelConnections of its own), without it each operation opens its own socket.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex } from '../src/bytes/index.js';
import { prepareBaseline, type Baseline } from './baseline-server.js';
import { freshPostgresDatabase, startPostgresCluster, type PostgresCluster } from '../test/support/index.js';
import { makeBenchCards, loadPostgresCards, loadSqliteCards } from './card-rows.js';
import { CLIENTS, cpuPer1000, runCycles } from './closed-loop.js';
import { runVsc, startServerProcess, type ServerProcess } from './server-process.js';

const known = new Set(['--old', '--keep', '--cpu-prof', '--postgres']);
const args = process.argv.slice(2);
const profile = args.indexOf('--cpu-prof');
const postgresAt = args.indexOf('--postgres');
const valued = (at: number, i: number): boolean => at !== -1 && i === at + 1;
const unknown = args.filter((arg, i) => !known.has(arg) && !valued(profile, i) && !valued(postgresAt, i));
const postgres = postgresAt === -1 ? 0 : Number(args[postgresAt + 1]);
if (unknown.length > 0 || (profile !== -1 && args[profile + 1] === undefined) || (postgresAt !== -1 && !(Number.isInteger(postgres) && postgres >= 1 && postgres <= 4))) {
  console.error(`usage: npx tsx bench/profile-server.ts [--old] [--keep] [--postgres N (1..4)] [--cpu-prof DIR]${unknown.length > 0 ? ` (unknown: ${unknown.join(' ')})` : ''}`);
  process.exit(2);
}
const old = args.includes('--old');
const keep = args.includes('--keep');
const nodeArgs = profile === -1 ? [] : ['--cpu-prof', `--cpu-prof-dir=${args[profile + 1]!}`];
const dir = mkdtempSync(join(tmpdir(), 'vsc-profile-'));
let baseline: Baseline | undefined;
let cluster: PostgresCluster | undefined;
try {
  if (old) {
    console.log('building the code before issue 18 in a git worktree…');
    baseline = await prepareBaseline();
  }
  const root = baseline === undefined ? {} : { root: baseline.root };
  const bench = await makeBenchCards(CLIENTS);
  const data = join(dir, 'server');
  let db: string | undefined;
  if (postgres > 0) {
    cluster = await startPostgresCluster();
    db = await freshPostgresDatabase(cluster.url);
  }
  await runVsc(['server', 'init', '--data', data, ...(db === undefined ? [] : ['--db', db])], ...(baseline === undefined ? [] : [baseline.root]));
  if (db === undefined) loadSqliteCards(join(data, 'vsc.db'), bench);
  else await loadPostgresCards(db, bench);
  const servers: ServerProcess[] = [];
  for (let i = 0; i < Math.max(1, postgres); i++) servers.push(await startServerProcess({ data, nodeArgs, ...root, ...(db === undefined ? {} : { db }) }));
  try {
    const where = db === undefined ? 'SQLite' : `PostgreSQL, ${postgres} server process${postgres === 1 ? '' : 'es'}`;
    const label = `${where}, 200 cards${old ? `, code of ${baseline!.commit}` : ''}${keep ? ', kept connections' : ', a connection per operation'}`;
    const figure = await runCycles(label, bench, servers, fromHex(readFileSync(join(data, 'master.key'), 'utf8').trim()), { keep });
    console.log(`${label}: ${figure.cyclesPerSecond.toFixed(0)} cycles/s, p50 ${figure.p50Ms.toFixed(1)} ms, p99 ${figure.p99Ms.toFixed(1)} ms, server CPU ${cpuPer1000(figure).toFixed(2)} ms per cycle, load CPU ${((figure.loadCpuSeconds / figure.cycles) * 1000).toFixed(2)} ms per cycle, failures ${figure.failures}${figure.failures === 0 ? '' : ` (${figure.failureKinds.join(', ')})`}`);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
} finally {
  await cluster?.stop();
  await baseline?.remove();
  rmSync(dir, { recursive: true, force: true });
}
