// A seat a program holds through the network license servers it is configured with (Wibu 002 Table 1): one server
// (network / floating), three of which two must grant it (high availability, "2 out of 3"), or a primary and a standby
// the program fails over to when the primary does not answer and back when it returns (hot and cold standby).
// refresh() is one round of heartbeats and repairs; it runs by itself every heartbeat period unless heartbeats are off.
import { bytesEqual } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';
import { LicenseServerUnavailableError } from './network-http.js';
import { ServerLease, type LeaseContext, type SeatRequest } from './server-lease.js';

export interface HeldSeat {
  /** Whether the program may use the license now (after the last round). */
  readonly held: boolean;
  /** Whether any lease it holds is an overflow seat (logged and billed by the licensor). */
  readonly overflow: boolean;
  /** The leases behind it, one per server that granted one. */
  readonly leases: readonly ServerLease[];
  /** One round: heartbeats, failing over or back, asking servers that lost the lease again. Resolves to `held`. */
  refresh(): Promise<boolean>;
  /** Gives every lease back and stops the heartbeats. */
  release(): Promise<void>;
}

export interface HoldOptions extends LeaseContext {
  /** Milliseconds between rounds; undefined: the servers' heartbeat period; 0: none (the caller calls refresh()). */
  readonly heartbeatMs?: number;
  /** Told when a held seat is lost (the program should stop using the license). */
  readonly onLost?: (seat: HeldSeat) => void;
}

const unavailable = (error: unknown): boolean => error instanceof LicenseServerUnavailableError;

/** The rounds of a held seat: timer, no overlapping rounds, onLost. */
abstract class Holding implements HeldSeat {
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<boolean> | undefined;
  #held = true;
  protected released = false;

  constructor(protected readonly request: SeatRequest, protected readonly options: HoldOptions) {}

  abstract get leases(): readonly ServerLease[];
  protected abstract round(): Promise<boolean>;

  get held(): boolean {
    return this.#held && !this.released;
  }

  get overflow(): boolean {
    return this.leases.some((lease) => lease.overflow);
  }

  protected start(): void {
    const ms = this.options.heartbeatMs ?? Math.min(...this.leases.map((lease) => lease.heartbeatSeconds)) * 1000;
    if (ms > 0) {
      this.#timer = setInterval(() => void this.refresh().catch(() => undefined), ms);
      this.#timer.unref();
    }
  }

  refresh(): Promise<boolean> {
    if (this.released) return Promise.resolve(false);
    this.#round ??= this.round().then((held) => {
      const lost = this.#held && !held;
      this.#held = held;
      if (lost) this.options.onLost?.(this);
      return held;
    }).finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  async release(): Promise<void> {
    this.released = true;
    clearInterval(this.#timer);
    await this.#round?.catch(() => undefined);
    await Promise.all(this.leases.map((lease) => lease.release()));
  }

  /** A heartbeat; a lease the server no longer knows is asked for again. Resolves to the lease, or undefined if lost. */
  protected async keep(lease: ServerLease): Promise<ServerLease | undefined> {
    try {
      await lease.heartbeat();
      return lease;
    } catch (error) {
      if (unavailable(error)) throw error;
      return ServerLease.acquire(lease.server, this.request, this.options).catch(() => undefined);
    }
  }
}

/** One server: the lease is held while the server renews it (or, while it does not answer, until the lease's end). */
export class SingleServerSeat extends Holding {
  private constructor(private lease: ServerLease | undefined, request: SeatRequest, options: HoldOptions) {
    super(request, options);
  }

  static async acquire(server: string, request: SeatRequest, options: HoldOptions): Promise<SingleServerSeat> {
    const seat = new SingleServerSeat(await ServerLease.acquire(server, request, options), request, options);
    seat.start();
    return seat;
  }

  get leases(): readonly ServerLease[] {
    return this.lease === undefined ? [] : [this.lease];
  }

  protected async round(): Promise<boolean> {
    const lease = this.lease;
    if (lease === undefined) return false;
    try {
      this.lease = await this.keep(lease);
    } catch {
      return lease.current;
    }
    return this.lease !== undefined;
  }
}

/**
 * High availability, "2 out of 3": a lease asked of each of three servers (each with its own card and the same item),
 * the seat held while at least two distinct cards renewed theirs in the last round. With N seats on each server, at
 * most floor(3N/2) programs hold a seat while all three run (N when every program gets all three), N while one is
 * down, none while two are: no outage of one server stops the programs, and none lets more than floor(3N/2) run.
 */
export class MajoritySeat extends Holding {
  private constructor(private readonly servers: readonly string[], private readonly byServer: Map<string, ServerLease>, request: SeatRequest, options: HoldOptions) {
    super(request, options);
  }

  static async acquire(servers: readonly string[], request: SeatRequest, options: HoldOptions): Promise<MajoritySeat> {
    if (servers.length !== 3 || new Set(servers).size !== 3) throw new LicenseError('input', `expected three distinct license servers for "2 out of 3", got ${servers.length}`);
    const results = await Promise.allSettled(servers.map((server) => ServerLease.acquire(server, request, options)));
    const byServer = new Map<string, ServerLease>();
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') byServer.set(servers[index]!, result.value);
    });
    const seat = new MajoritySeat(servers, byServer, request, options);
    if (distinctCards([...byServer.values()]) < 2) {
      await seat.release();
      const refusal = results.find((result): result is PromiseRejectedResult => result.status === 'rejected' && !unavailable(result.reason))?.reason as unknown;
      if (refusal instanceof LicenseError) throw refusal;
      throw new LicenseServerUnavailableError(servers.join(', '), `only ${byServer.size} of 3 license servers granted a seat: "2 out of 3" needs two`);
    }
    seat.start();
    return seat;
  }

  get leases(): readonly ServerLease[] {
    return [...this.byServer.values()];
  }

  protected async round(): Promise<boolean> {
    const renewed = await Promise.all(this.servers.map(async (server) => {
      const lease = this.byServer.get(server);
      try {
        const kept = lease === undefined ? await ServerLease.acquire(server, this.request, this.options) : await this.keep(lease);
        if (kept === undefined) this.byServer.delete(server);
        else this.byServer.set(server, kept);
        return kept;
      } catch {
        return undefined;
      }
    }));
    if (this.released) return false;
    return distinctCards(renewed.filter((lease): lease is ServerLease => lease !== undefined)) >= 2;
  }
}

/** Cards behind the leases: three URLs of one server (or one card) must not pass for a majority. */
function distinctCards(leases: readonly ServerLease[]): number {
  const cards: Uint8Array[] = [];
  for (const lease of leases) if (!cards.some((card) => bytesEqual(card, lease.card.publicKey))) cards.push(lease.card.publicKey);
  return cards.length;
}

/**
 * Hot or cold standby: the primary, and the standby when the primary does not answer (a refusal by the primary
 * stands). On the standby, every round first asks the primary again and returns to it once it grants the seat.
 */
export class StandbySeat extends Holding {
  private constructor(private readonly primary: string, private readonly standby: string, private lease: ServerLease | undefined, request: SeatRequest, options: HoldOptions) {
    super(request, options);
  }

  static async acquire(primary: string, standby: string, request: SeatRequest, options: HoldOptions): Promise<StandbySeat> {
    const seat = new StandbySeat(primary, standby, await StandbySeat.#take(primary, standby, request, options), request, options);
    seat.start();
    return seat;
  }

  static async #take(primary: string, standby: string, request: SeatRequest, options: HoldOptions): Promise<ServerLease> {
    try {
      return await ServerLease.acquire(primary, request, options);
    } catch (error) {
      if (!unavailable(error)) throw error;
      return ServerLease.acquire(standby, request, options);
    }
  }

  get leases(): readonly ServerLease[] {
    return this.lease === undefined ? [] : [this.lease];
  }

  /** Whether the seat is on the standby now. */
  get onStandby(): boolean {
    return this.lease?.server === this.standby;
  }

  protected async round(): Promise<boolean> {
    const lease = this.lease;
    if (lease === undefined) {
      this.lease = await StandbySeat.#take(this.primary, this.standby, this.request, this.options).catch(() => undefined);
      return this.lease !== undefined;
    }
    if (lease.server === this.standby) {
      const back = await ServerLease.acquire(this.primary, this.request, this.options).catch(() => undefined);
      if (back !== undefined) {
        this.lease = back;
        await lease.release();
        return true;
      }
    }
    try {
      this.lease = await this.keep(lease);
    } catch {
      // The server does not answer: to the standby (or from it, to the primary) while the old lease would still run.
      this.lease = await StandbySeat.#take(this.primary, this.standby, this.request, this.options).catch(() => undefined);
      if (this.lease === undefined) {
        this.lease = lease;
        return lease.current;
      }
      await lease.release();
      return true;
    }
    if (this.lease === undefined) this.lease = await StandbySeat.#take(this.primary, this.standby, this.request, this.options).catch(() => undefined);
    return this.lease !== undefined;
  }
}
