// What this machine remembers of each card it has used (issue: a rogue server must not weaken the
// password's KDF, nor roll a card back): the Argon2id parameters it last derived with and the newest
// sealed version it has seen or uploaded. A server that later offers lower parameters, or serves an
// older sealed version, is refused before the password is derived or the information is opened.
// Nothing here is secret; one small JSON file per serial in the machine's state directory.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, VscError } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import type { KdfParams } from '../vsc-protocol/index.js';

export interface KnownCard {
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
  /** The newest sealed version this machine has seen or uploaded (decimal). */
  readonly sealedVersion: string;
}

export class RollbackError extends VscError {
  override readonly name = 'RollbackError';
  constructor(message: string) {
    super('server.rollback', message, { exitCode: ExitCode.authenticationFailed });
  }
}

export class KnownCards {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = join(stateDir, 'known-cards');
  }

  get(serial: string): KnownCard | undefined {
    let text: string;
    try {
      text = readFileSync(this.#path(serial), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = JSON.parse(text) as Partial<KnownCard>;
    const number = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value > 0;
    if (!number(parsed.memoryKiB) || !number(parsed.iterations) || !number(parsed.parallelism) || typeof parsed.sealedVersion !== 'string' || !/^[0-9]{1,40}$/.test(parsed.sealedVersion)) {
      throw new VscError('client.known-cards', `${this.#path(serial)} is damaged: delete it to trust the server's parameters again`);
    }
    return parsed as KnownCard;
  }

  /** Refuses parameters weaker than the ones this machine last derived with for `serial`. */
  checkKdf(serial: string, kdf: KdfParams): void {
    const known = this.get(serial);
    if (known === undefined) return;
    if (kdf.memoryKiB < known.memoryKiB || kdf.iterations < known.iterations || kdf.parallelism < known.parallelism) {
      throw new RollbackError(
        `the server offers weaker password parameters for card ${serial} (m=${kdf.memoryKiB} KiB, t=${kdf.iterations}, p=${kdf.parallelism}) than this machine last used (m=${known.memoryKiB} KiB, t=${known.iterations}, p=${known.parallelism}): refused`,
      );
    }
  }

  /** Refuses a sealed version older than the newest this machine has seen or uploaded for `serial`. */
  checkSealedVersion(serial: string, version: bigint): void {
    const known = this.get(serial);
    if (known !== undefined && version < BigInt(known.sealedVersion)) {
      throw new RollbackError(`the server serves card ${serial} at sealed version ${version}, older than version ${known.sealedVersion} this machine uploaded: refused`);
    }
  }

  /** Remembers `kdf` and `sealedVersion` (never lowering what is already known). */
  remember(serial: string, kdf: Pick<KdfParams, 'memoryKiB' | 'iterations' | 'parallelism'> | undefined, sealedVersion: bigint): void {
    const known = this.get(serial);
    const version = known === undefined || sealedVersion > BigInt(known.sealedVersion) ? sealedVersion : BigInt(known.sealedVersion);
    const params = kdf ?? known;
    if (params === undefined) return;
    const next: KnownCard = {
      memoryKiB: Math.max(params.memoryKiB, known?.memoryKiB ?? 0),
      iterations: Math.max(params.iterations, known?.iterations ?? 0),
      parallelism: Math.max(params.parallelism, known?.parallelism ?? 0),
      sealedVersion: version.toString(),
    };
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.#path(serial), new TextEncoder().encode(`${JSON.stringify(next)}\n`));
  }

  #path(serial: string): string {
    return join(this.#dir, `${serial}.json`);
  }
}
