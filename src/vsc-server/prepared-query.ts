// Statements built and compiled once: kysely builds a query's tree and compiles its SQL at every call,
// which for the few statements every card operation runs costs more than running them. A prepared
// query is built once with slots where the call's values go, and each call binds its values into the
// compiled SQL's parameters and runs it on the caller's transaction. SQLite keeps each text's prepared
// statement (database.ts); on PostgreSQL these texts run as named statements, parsed once per connection.
import type { Compilable, CompiledQuery, QueryResult } from 'kysely';

/** Where a prepared query runs: a kysely instance or transaction of any schema. */
export interface QueryRunner {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/** Where a call's argument goes in a prepared query's parameters. */
class Slot {
  constructor(readonly index: number) {}
}

/** The slot of argument `index`, typed as the value it stands for. */
export type SlotOf = <T>(index: number) => T;
const slot: SlotOf = <T>(index: number): T => new Slot(index) as unknown as T;

/** SQL texts of prepared queries and their statement names, for PostgreSQL's named statements. */
const NAMES = new Map<string, string>();

/** The statement name of a prepared query's SQL text, if it is one. */
export function preparedStatementName(text: string): string | undefined {
  return NAMES.get(text);
}

export class PreparedQuery<R> {
  readonly #template: CompiledQuery<R>;
  readonly #arity: number;

  constructor(query: Compilable<R>) {
    this.#template = query.compile();
    const slots = this.#template.parameters.filter((parameter): parameter is Slot => parameter instanceof Slot);
    this.#arity = slots.reduce((max, { index }) => Math.max(max, index + 1), 0);
    if (!NAMES.has(this.#template.sql)) NAMES.set(this.#template.sql, `vsc_prepared_${NAMES.size + 1}`);
  }

  get sql(): string {
    return this.#template.sql;
  }

  /** The compiled query with `args` in its slots. */
  bind(args: readonly unknown[]): CompiledQuery<R> {
    if (args.length !== this.#arity) throw new RangeError(`expected ${this.#arity} values for a prepared query, got ${args.length}`);
    const parameters = this.#template.parameters.map((parameter) => (parameter instanceof Slot ? args[parameter.index] : parameter));
    return { ...this.#template, parameters };
  }

  run(executor: QueryRunner, ...args: readonly unknown[]): Promise<QueryResult<R>> {
    return executor.executeQuery(this.bind(args));
  }

  async first(executor: QueryRunner, ...args: readonly unknown[]): Promise<R | undefined> {
    return (await this.run(executor, ...args)).rows[0];
  }

  /** Rows the statement changed (an UPDATE, INSERT or DELETE). */
  async changed(executor: QueryRunner, ...args: readonly unknown[]): Promise<bigint> {
    return (await this.run(executor, ...args)).numAffectedRows ?? 0n;
  }
}

/** A query built once by `build`, which puts `slot(i)` where the i-th value of each call goes. */
export function prepare<R>(build: (slot: SlotOf) => Compilable<R>): PreparedQuery<R> {
  return new PreparedQuery(build(slot));
}
