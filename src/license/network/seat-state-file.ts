// The network license server's state file (Wibu 002 Table 1 network / borrowable / standby): its leases, borrows and
// standby time, so that a restart neither forgets a borrowed seat nor hands it out twice. UTF-8 JSON, mode 0600,
// replaced atomically at every change (src/files):
//   {"format": "vsc-license-seats/1", "seats": [seat, ...], "standby": {"LD/PRODUCT": {seconds, coveredUntil, minutes}}}
import { readPrivateFile, writeFileAtomic } from '../../files/index.js';
import { LicenseError } from '../license-error.js';
import { seatFromJson, type Seat } from './seat-table.js';
import { standbyFromJson, type StandbyUse } from './standby-meter.js';

export const SEAT_STATE_FORMAT = 'vsc-license-seats/1';
/** Seats one state file may hold: far beyond any license quantity, small enough to read at once. */
const MAX_SEATS = 100_000;

export interface SeatState {
  readonly seats: readonly Seat[];
  readonly standby: Readonly<Record<string, StandbyUse>>;
}

export const EMPTY_SEAT_STATE: SeatState = Object.freeze({ seats: Object.freeze([]) as readonly Seat[], standby: Object.freeze({}) });

export function encodeSeatState(state: SeatState): string {
  return `${JSON.stringify({ format: SEAT_STATE_FORMAT, seats: state.seats, standby: state.standby })}\n`;
}

export function parseSeatState(text: string, where = 'seat state'): SeatState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LicenseError('input', `${where}: not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LicenseError('input', `${where}: expected a JSON object`);
  const fields = value as Record<string, unknown>;
  if (fields['format'] !== SEAT_STATE_FORMAT || Object.keys(fields).length !== 3) throw new LicenseError('input', `${where}: expected {"format": "${SEAT_STATE_FORMAT}", "seats", "standby"}`);
  const seats = fields['seats'];
  if (!Array.isArray(seats) || seats.length > MAX_SEATS) throw new LicenseError('input', `${where}: expected seats as a list of at most ${MAX_SEATS}`);
  const parsed = seats.map((seat, index) => seatFromJson(seat, `${where} seat ${index}`));
  if (new Set(parsed.map((seat) => seat.id)).size !== parsed.length) throw new LicenseError('input', `${where}: expected every seat id once`);
  return { seats: parsed, standby: standbyFromJson(fields['standby'], `${where} standby`) };
}

/** The state kept in `path`, or none yet; a file others can read, or that does not parse, stops the server. */
export function readSeatState(path: string): SeatState {
  let bytes: Uint8Array;
  try {
    bytes = readPrivateFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_SEAT_STATE;
    throw error;
  }
  return parseSeatState(new TextDecoder().decode(bytes), path);
}

export function writeSeatState(path: string, state: SeatState): void {
  writeFileAtomic(path, new TextEncoder().encode(encodeSeatState(state)), 0o600);
}
