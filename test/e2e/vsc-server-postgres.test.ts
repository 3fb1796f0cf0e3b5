// The same server on a real PostgreSQL (`--db postgres://...`), through the CLI only: the life of a
// card across two machines, its refusals with their exit codes, and the admin side on that database.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freshPostgresDatabase } from '../support/postgres-cluster.js';
import { startServerHarness, type ServerHarness } from './support/vsc-server-harness.js';
import { runVsc as vsc } from './support/vsc-process.js';

let harness: ServerHarness;
beforeAll(async () => {
  harness = await startServerHarness({ port: 23_000 + (process.pid % 2000), db: await freshPostgresDatabase(inject('postgresUrl')) });
}, 60_000);
afterAll(() => harness.close());

describe('VSC server on PostgreSQL through the CLI', { timeout: 120_000 }, () => {
  it('enroll, insert on A, B refused (3) and cannot recover (5), crash, recover from A, copy, replace, destroy', async () => {
    const { client, machine } = harness;
    await harness.enroll('PG-1', 'pg password');
    const a = await harness.startInsert('PG-1', 'pg password', 'A');
    expect(a.child.exitCode).toBeNull();
    expect(await harness.state('PG-1')).toBe('in-use');
    expect((await vsc(['card', 'insert', ...client('PG-1', 'pg password'), ...machine('B')])).code).toBe(3);
    expect((await vsc(['card', 'recover', ...client('PG-1', 'pg password'), ...machine('B')])).code).toBe(5);
    expect((await vsc(['card', 'insert', ...client('PG-1', 'wrong'), ...machine('B')])).code).toBe(4);
    a.child.kill('SIGKILL');
    await a.exited;
    expect((await vsc(['card', 'recover', ...client('PG-1', 'pg password'), ...machine('A')])).code).toBe(0);
    expect(await harness.state('PG-1')).toBe('idle');

    expect((await vsc(['admin', 'copy', ...harness.admin, '--serial', 'PG-1', '--new-serial', 'PG-1-COPY'])).code).toBe(0);
    expect((await vsc(['admin', 'replace', ...harness.admin, '--serial', 'PG-1', '--new-serial', 'PG-2'])).code).toBe(0);
    const b = await harness.startInsert('PG-2', 'pg password', 'B');
    expect(b.child.exitCode).toBeNull();
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    expect((await vsc(['card', 'destroy', ...client('PG-2', 'pg password'), ...machine('B')])).code).toBe(0);

    const list = await vsc(['admin', 'list', ...harness.admin, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { serial: string; state: string; authFailures: number }[]).map((card) => `${card.serial}:${card.state}:${card.authFailures}`)).toEqual([
      'PG-1:destroyed:0', 'PG-1-COPY:idle:0', 'PG-2:destroyed:0',
    ]);
    const events = (await vsc(['admin', 'events', ...harness.admin, '--serial', 'PG-1'])).stdout;
    expect(events).toMatch(/insert\s+refused: wrong-state/);
    expect(events).toMatch(/recover\s+refused: muk-mismatch/);
    expect(events).toMatch(/recover\s+ok in-use -> idle/);
    expect(events).toMatch(/replace\s+ok idle -> destroyed\s+\(replaced by PG-2 \(exact\)\)/);
  });
});
