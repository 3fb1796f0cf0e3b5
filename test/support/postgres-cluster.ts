// A real PostgreSQL for the tests: a throw-away cluster in a temp dir, started by the test setup and
// reachable only on 127.0.0.1. As root the cluster runs as the `postgres` user the Debian package
// creates (PostgreSQL refuses to run as root). Nothing here skips: a missing PostgreSQL is an error.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './free-port.js';
import pg from 'pg';

export const POSTGRES_INSTALL_COMMAND = 'apt-get install -y postgresql';

export interface PostgresCluster {
  /** postgres://vsc@127.0.0.1:PORT/postgres, superuser without password (trust, local only). */
  readonly url: string;
  /** Kills the server at once (pg_ctl -m immediate): clients see their connections die, as in a crash. */
  halt(): Promise<void>;
  /** Starts the halted server again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function binDirectory(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'pg_ctl')) && existsSync(join(bin, 'initdb'))) return bin;
  }
  throw new Error(`the tests need a real PostgreSQL server (initdb, pg_ctl under ${root}/VERSION/bin); install it with: ${POSTGRES_INSTALL_COMMAND}`);
}

function run(file: string, args: readonly string[], asUser: string | undefined): Promise<string> {
  const [command, commandArgs] = asUser === undefined ? [file, args] : ['runuser', ['-u', asUser, '--', file, ...args]];
  return new Promise((resolve, reject) => {
    execFile(command, commandArgs, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')} failed: ${String(error.code ?? error.signal)}\n${stderr.trim()}`, { cause: error }));
    });
  });
}


/**
 * A PostgreSQL cluster of the test run's own. By default it trades durability for speed (fsync off,
 * asynchronous commit); `durable` keeps PostgreSQL's defaults, for a test that kills the server and
 * expects every committed transaction to be there when it comes back.
 */
export async function startPostgresCluster(options: { durable?: boolean } = {}): Promise<PostgresCluster> {
  const bin = binDirectory();
  const asUser = process.getuid?.() === 0 ? 'postgres' : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'vsc-postgres-'));
  const data = join(dir, 'data');
  if (asUser !== undefined) {
    const id = (flag: string) => Number(execFileSync('id', [flag, asUser], { encoding: 'utf8' }).trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  // fsync off: a test cluster needs no durability, and it makes every test faster.
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'vsc', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale', 'C'], asUser);
  const port = await freePort();
  const speed = options.durable === true ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
  const settings = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir}${speed} -c max_connections=200`;
  const start = () => run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'postgres.log'), '-o', settings, '-w', '-t', '60', 'start'], asUser);
  await start();
  return {
    url: `postgres://vsc@127.0.0.1:${port}/postgres`,
    async halt() {
      await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], asUser);
    },
    async restart() {
      await start();
    },
    async stop() {
      await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], asUser).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A fresh, empty database in the cluster for one test. It is not dropped: the whole cluster goes at
 * the end of the run, and dropping while the pool's connections are still closing would kill them.
 */
export async function freshPostgresDatabase(clusterUrl: string): Promise<string> {
  const name = `vsc_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: clusterUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
