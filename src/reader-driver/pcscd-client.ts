// The host side of pcscd for this project's own programs (DESIGN.md "What backs a running card": "over real
// pcscd through a PC/SC client library"): readers and card connections through libpcsclite, by the optional npm
// package `smartcard` (compiled by `npm ci` against libpcsclite-dev). A connection is a CardTransport, so the typed
// applet clients (src/card-client) work over it unchanged.
//
// libpcsclite's SCardBeginTransaction is not exposed by the binding; `withExclusiveCard` gives the guarantee a
// transaction would, and more: while it runs, the connection is SCARD_SHARE_EXCLUSIVE, so no other application's
// command (OpenSC driving the PIV applet, another rental server) reaches the card in between.
import { ExitCode, VscError } from '../errors/index.js';

const SMARTCARD_MISSING =
  'reaching cards through pcscd needs the npm package smartcard, compiled by npm ci against libpcsclite: ' +
  'apt-get install -y libpcsclite-dev g++ make python3 && npm ci';

/** The subset of `smartcard` this module uses. */
interface SmartcardCard {
  transmit(command: Buffer, options?: { maxRecvLength?: number; autoGetResponse?: boolean }): Promise<Buffer>;
  disconnect(disposition?: number): void;
  readonly atr: Buffer | null;
}
interface SmartcardReader {
  readonly name: string;
  readonly state: number;
  connect(shareMode?: number, protocol?: number): Promise<SmartcardCard>;
}
interface SmartcardContext {
  listReaders(): SmartcardReader[];
  close(): void;
}
interface SmartcardPackage {
  readonly Context: new () => SmartcardContext;
  readonly SCARD_SHARE_SHARED: number;
  readonly SCARD_SHARE_EXCLUSIVE: number;
  readonly SCARD_PROTOCOL_T0: number;
  readonly SCARD_PROTOCOL_T1: number;
  readonly SCARD_LEAVE_CARD: number;
  readonly SCARD_STATE_PRESENT: number;
}

/** pcscd refused or failed: not running, no such reader, no card, the card held exclusively by another program. */
export class PcscdError extends VscError {
  override readonly name = 'PcscdError';
  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: ExitCode } = {}) {
    super(`pcscd.${code}`, message, { exitCode: options.exitCode ?? ExitCode.refusedByState, ...(options.cause === undefined ? {} : { cause: options.cause }) });
  }
}

let loaded: Promise<SmartcardPackage> | undefined;

/** `smartcard`, loaded on first use: an optional dependency, so the specifier is a variable type checks leave alone. */
function smartcard(): Promise<SmartcardPackage> {
  loaded ??= (async () => {
    const specifier = 'smartcard';
    try {
      const module = (await import(specifier)) as { default?: SmartcardPackage } & Partial<SmartcardPackage>;
      const exports = (module.Context === undefined ? module.default : module) as SmartcardPackage | undefined;
      if (typeof exports?.Context !== 'function') throw new TypeError('smartcard exports no Context');
      return exports;
    } catch (error) {
      loaded = undefined;
      throw new PcscdError('binding-missing', SMARTCARD_MISSING, { cause: error, exitCode: ExitCode.other });
    }
  })();
  return loaded;
}

/** PC/SC failures arrive as Errors whose message names the SCARD_ code; the first line is kept. */
function pcscFailure(what: string, error: unknown): PcscdError {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
  const code = /SCARD_[EWF]_[A-Z_]+/.exec(message)?.[0];
  if (code === 'SCARD_E_NO_SERVICE' || /service/i.test(message)) return new PcscdError('no-service', `${what}: pcscd is not running (${message})`, { cause: error });
  if (code === 'SCARD_E_SHARING_VIOLATION' || /sharing/i.test(message)) return new PcscdError('busy', `${what}: another program holds the card exclusively (${message})`, { cause: error });
  if (code === 'SCARD_W_REMOVED_CARD' || code === 'SCARD_E_NO_SMARTCARD' || /removed|no smart ?card/i.test(message)) return new PcscdError('no-card', `${what}: no card in the reader (${message})`, { cause: error });
  return new PcscdError('failed', `${what}: ${message}`, { cause: error });
}

export interface PcscdReader {
  readonly name: string;
  readonly cardPresent: boolean;
}

/** SCardEstablishContext; the caller closes it. */
function openContext(pcsc: SmartcardPackage): SmartcardContext {
  try {
    return new pcsc.Context();
  } catch (error) {
    throw pcscFailure('establishing a PC/SC context', error);
  }
}

/** SCardListReaders: no reader at all is an empty list, not a failure. */
function readersOf(context: SmartcardContext): SmartcardReader[] {
  try {
    return context.listReaders();
  } catch (error) {
    if (/no readers|SCARD_E_NO_READERS_AVAILABLE/i.test(String((error as Error).message))) return [];
    throw pcscFailure('listing the readers', error);
  }
}

/** The readers pcscd knows, and whether each holds a card (SCardListReaders, SCardGetStatusChange). */
export async function listPcscdReaders(): Promise<PcscdReader[]> {
  const pcsc = await smartcard();
  const context = openContext(pcsc);
  try {
    return readersOf(context).map((reader) => ({ name: reader.name, cardPresent: (reader.state & pcsc.SCARD_STATE_PRESENT) !== 0 }));
  } finally {
    context.close();
  }
}

/** A card connection through pcscd: a CardTransport for the applet clients. */
export interface PcscdConnection {
  readonly reader: string;
  readonly atr: Uint8Array;
  transmit(command: Uint8Array): Promise<Uint8Array>;
  /** SCardDisconnect, leaving the card powered; the context is released. */
  disconnect(): void;
}

/** SCardConnect to the card in `reader` (T=1 or T=0), shared unless `exclusive`. */
export async function connectPcscd(reader: string, options: { exclusive?: boolean } = {}): Promise<PcscdConnection> {
  const pcsc = await smartcard();
  const context = openContext(pcsc);
  try {
    const readers = readersOf(context);
    const found = readers.find((candidate) => candidate.name === reader);
    if (found === undefined) {
      throw new PcscdError('no-reader', `pcscd has no reader named ${JSON.stringify(reader)} (it has ${readers.length === 0 ? 'none' : readers.map((r) => JSON.stringify(r.name)).join(', ')})`);
    }
    let card: SmartcardCard;
    try {
      card = await found.connect(options.exclusive === true ? pcsc.SCARD_SHARE_EXCLUSIVE : pcsc.SCARD_SHARE_SHARED, pcsc.SCARD_PROTOCOL_T1 | pcsc.SCARD_PROTOCOL_T0);
    } catch (error) {
      throw pcscFailure(`connecting to the card in ${reader}`, error);
    }
    let open = true;
    return {
      reader,
      atr: Uint8Array.from(card.atr ?? []),
      transmit: async (command) => {
        if (!open) throw new PcscdError('closed', `the connection to ${reader} is closed`);
        try {
          // The applet clients do GET RESPONSE and 6Cxx themselves (card-transport.ts): the binding must not.
          const response = await card.transmit(Buffer.from(command), { autoGetResponse: false, maxRecvLength: 258 });
          return Uint8Array.from(response);
        } catch (error) {
          throw pcscFailure(`sending a command to the card in ${reader}`, error);
        }
      },
      disconnect: () => {
        if (!open) return;
        open = false;
        try {
          card.disconnect(pcsc.SCARD_LEAVE_CARD);
        } catch {
          // A card already gone has nothing left to disconnect.
        }
        context.close();
      },
    };
  } catch (error) {
    context.close();
    throw error;
  }
}

/**
 * Runs `body` on an exclusive connection to the card in `reader`, then disconnects: what one PC/SC transaction
 * would give (no other application's command in between), for one unit of work such as a rental Write.
 */
export async function withExclusiveCard<T>(reader: string, body: (connection: PcscdConnection) => Promise<T>): Promise<T> {
  const connection = await connectPcscd(reader, { exclusive: true });
  try {
    return await body(connection);
  } finally {
    connection.disconnect();
  }
}
