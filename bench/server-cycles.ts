// Server-cycle benchmark (issues 6 and 18): insert + remove cycles of real `vsc server start`
// processes against the crypto floor of a cycle measured in the same run; closed loop (200 clients)
// and open loop (half the closed loop's capacity); SQLite with 200, +10,000 and +1,000,000 cards;
// PostgreSQL with one and two server processes; the code before issue 18 from a git worktree.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fromHex, wipe } from '../src/bytes/index.js';
import { freshPostgresDatabase, startPostgresCluster } from '../test/support/index.js';
import { prepareBaseline, BASELINE_COMMIT, type Baseline } from './baseline-server.js';
import { loadPostgresCards, loadSqliteCards, loadSqliteFiller, makeBenchCards } from './card-rows.js';
import { CLIENTS, runCycles, type CycleFigure } from './closed-loop.js';
import { measureCryptoFloor, type CryptoFloor } from './crypto-floor.js';
import { runOpenLoop, type OpenLoopFigure } from './open-loop.js';
import { runVsc, startServerProcess, type ServerProcess } from './server-process.js';
import { serverCyclesSection } from './server-cycles-section.js';

export { CLIENTS, cpuPer1000, runCycles, type CycleFigure } from './closed-loop.js';
export { serverCyclesSection } from './server-cycles-section.js';

/** One configuration measured in the closed loop, then in the open loop at half its capacity. */
export interface LoadPair {
  readonly closed: CycleFigure;
  readonly open: OpenLoopFigure;
}

export interface ServerCycleResults {
  readonly argon2Ms: number;
  readonly floor: CryptoFloor;
  readonly sqlite: LoadPair & { readonly plus10k: CycleFigure; readonly plus1m: CycleFigure };
  readonly postgres?: { readonly one: LoadPair; readonly two: LoadPair };
  /** The code before issue 18, closed loop, each operation on a connection of its own (the old protocol). */
  readonly baseline: { readonly commit: string; readonly sqlite?: CycleFigure; readonly postgres?: CycleFigure; readonly notMeasured?: string };
  readonly wallSeconds: number;
  readonly notes: readonly string[];
}

export interface ServerCycleOptions {
  /** Run the servers under `node --cpu-prof` and write their profiles here. */
  readonly cpuProfileDir?: string;
  readonly log?: (line: string) => void;
}

/** A data directory made by `vsc server init` of `root` (this checkout or the baseline's), its master key. */
interface DataDir {
  readonly data: string;
  readonly masterKey: Uint8Array;
  readonly root?: string;
  readonly db?: string;
}

async function initData(data: string, root: string | undefined, db?: string): Promise<DataDir> {
  await runVsc(['server', 'init', '--data', data, ...(db === undefined ? [] : ['--db', db])], ...(root === undefined ? [] : [root]));
  const masterKey = fromHex(readFileSync(join(data, 'master.key'), 'utf8').trim());
  return { data, masterKey, ...(root === undefined ? {} : { root }), ...(db === undefined ? {} : { db }) };
}

export async function measureServerCycles(options: ServerCycleOptions = {}): Promise<ServerCycleResults> {
  const log = options.log ?? ((line: string) => console.log(line));
  const nodeArgs = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`];
  const began = performance.now();
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'vsc-bench-server-'));
  let baseline: Baseline | undefined;
  let notMeasured: string | undefined;
  try {
    // The build comes first: it is CPU work that must not overlap a measurement.
    log(`server cycles: building the code before issue 18 (${BASELINE_COMMIT}) in a git worktree…`);
    try {
      baseline = await prepareBaseline();
      notes.push(`The code before issue 18: \`git worktree add --detach\` of ${baseline.commit}, built with this checkout's node_modules in ${baseline.buildSeconds.toFixed(0)} s, removed after the run.`);
    } catch (error) {
      notMeasured = (error as Error).message.split('\n')[0]!;
    }
    log('server cycles: one Argon2id derivation for the bench cards…');
    const bench = await makeBenchCards(CLIENTS);
    log('server cycles: crypto floor of one cycle…');
    const floor = measureCryptoFloor(bench.cards[0]!.sealed.length);

    const servers = async <T>(count: number, on: DataDir, body: (servers: ServerProcess[]) => Promise<T>): Promise<T> => {
      const started: ServerProcess[] = [];
      try {
        for (let i = 0; i < count; i++) {
          started.push(await startServerProcess({ data: on.data, nodeArgs, ...(on.db === undefined ? {} : { db: on.db }), ...(on.root === undefined ? {} : { root: on.root }) }));
        }
        return await body(started);
      } finally {
        await Promise.all(started.map((server) => server.stop()));
      }
    };
    const closed = (label: string, count: number, on: DataDir, keep: boolean): Promise<CycleFigure> => {
      log(`server cycles: ${label}, closed loop…`);
      return servers(count, on, (started) => runCycles(label, bench, started, on.masterKey, { keep }));
    };
    const pair = async (label: string, count: number, on: DataDir): Promise<LoadPair> => {
      const closedFigure = await closed(label, count, on, true);
      const rate = closedFigure.cyclesPerSecond / 2;
      log(`server cycles: ${label}, open loop at ${rate.toFixed(0)} arrivals/s…`);
      const open = await servers(count, on, (started) => runOpenLoop(label, bench, started, on.masterKey, rate));
      return { closed: closedFigure, open };
    };
    // The old code's runs are a comparison: one that fails is reported, and the rest of the section stands.
    const old = async (label: string, on: DataDir | undefined): Promise<CycleFigure | undefined> => {
      if (on === undefined) return undefined;
      try {
        return await closed(`${label}, code before issue 18`, 1, on, false);
      } catch (error) {
        notes.push(`${label}, code before issue 18: not measured: ${(error as Error).message.split('\n')[0]}`);
        return undefined;
      }
    };

    const sqliteNew = await initData(join(dir, 'sqlite'), undefined);
    loadSqliteCards(join(sqliteNew.data, 'vsc.db'), bench);
    const oldData = async (name: string, what: string, load: (on: DataDir) => Promise<void>, db?: string): Promise<DataDir | undefined> => {
      if (baseline === undefined) return undefined;
      try {
        const on = await initData(join(dir, name), baseline.root, db);
        await load(on);
        return on;
      } catch (error) {
        notes.push(`${what} for the code before issue 18 not prepared: ${(error as Error).message.split('\n')[0]}`);
        return undefined;
      }
    };
    const sqliteOld = await oldData('sqlite-old', 'SQLite data directory', async (on) => loadSqliteCards(join(on.data, 'vsc.db'), bench));
    const sqlite = await pair('SQLite, 1 server process, 200 cards', 1, sqliteNew);
    const sqliteBefore = await old('SQLite, 1 server process, 200 cards', sqliteOld);
    const path = join(sqliteNew.data, 'vsc.db');
    let started = performance.now();
    loadSqliteFiller(path, bench, 0, 10_000);
    notes.push(`10,000 filler cards written into SQLite in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    const plus10k = await closed('SQLite, 1 server process, 200 + 10,000 cards', 1, sqliteNew, true);
    started = performance.now();
    loadSqliteFiller(path, bench, 10_000, 1_000_000);
    notes.push(`990,000 more filler cards written into SQLite in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    const plus1m = await closed('SQLite, 1 server process, 200 + 1,000,000 cards', 1, sqliteNew, true);

    let postgres: ServerCycleResults['postgres'];
    let postgresBefore: CycleFigure | undefined;
    try {
      log('server cycles: starting a throw-away PostgreSQL cluster…');
      const cluster = await startPostgresCluster();
      try {
        const pgNew = await initData(join(dir, 'postgres'), undefined, await freshPostgresDatabase(cluster.url));
        await loadPostgresCards(pgNew.db!, bench);
        const pgOld = baseline === undefined ? undefined : await oldData('postgres-old', 'PostgreSQL database', (on) => loadPostgresCards(on.db!, bench), await freshPostgresDatabase(cluster.url));
        const one = await pair('PostgreSQL, 1 server process', 1, pgNew);
        const two = await pair('PostgreSQL, 2 server processes', 2, pgNew);
        postgresBefore = await old('PostgreSQL, 1 server process', pgOld);
        postgres = { one, two };
      } finally {
        await cluster.stop();
      }
    } catch (error) {
      notes.push(`PostgreSQL not measured: ${(error as Error).message.split('\n')[0]}`);
    }
    wipe(bench.keys.authKey, bench.keys.protectionKey);
    return {
      argon2Ms: bench.argon2Ms, floor, sqlite: { ...sqlite, plus10k, plus1m }, ...(postgres === undefined ? {} : { postgres }),
      baseline: { commit: BASELINE_COMMIT, ...(sqliteBefore === undefined ? {} : { sqlite: sqliteBefore }), ...(postgresBefore === undefined ? {} : { postgres: postgresBefore }), ...(notMeasured === undefined ? {} : { notMeasured }) },
      wallSeconds: (performance.now() - began) / 1000,
      notes,
    };
  } finally {
    await baseline?.remove().catch((error: unknown) => log(`server cycles: could not remove the baseline worktree: ${(error as Error).message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

// `npx tsx bench/server-cycles.ts [--cpu-prof DIR]`: this benchmark alone, printed, BENCHMARKS.md untouched.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const profile = process.argv.indexOf('--cpu-prof');
  const cpuProfileDir = profile === -1 ? undefined : process.argv[profile + 1];
  const results = await measureServerCycles(cpuProfileDir === undefined ? {} : { cpuProfileDir });
  console.log(serverCyclesSection(results).join('\n'));
}
