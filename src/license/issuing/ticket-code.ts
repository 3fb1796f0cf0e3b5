// Ticket codes (Wibu 002: "the license travels back to SAP as a ticket and is then delivered as an email or a printed
// activation code"): 25 characters of RFC 4648 base32 in five groups, 125 random bits, e.g. ABCDE-FGH23-...; the
// database keeps their SHA-256 only (and the code sealed, issuing-data.ts). A ticket's public name in audit records
// and answers is its reference: the first 8 bytes of that hash, in hex, which says nothing of the code.
import { randomBytes } from 'node:crypto';
import { toHex, utf8 } from '../../bytes/index.js';
import { sha256 } from '../../crypto/index.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const TICKET_PATTERN = '^[A-Z2-7]{5}(-[A-Z2-7]{5}){4}$';
const TICKET = new RegExp(TICKET_PATTERN);

/** A fresh ticket code. */
export function generateTicketCode(): string {
  const bytes = randomBytes(25);
  // 256 is a multiple of 32: the low five bits of a random byte are uniform.
  const chars = [...bytes].map((byte) => ALPHABET[byte & 31]!);
  bytes.fill(0);
  return [0, 5, 10, 15, 20].map((start) => chars.slice(start, start + 5).join('')).join('-');
}

export const isTicketCode = (value: unknown): value is string => typeof value === 'string' && TICKET.test(value);

/** What the database finds a ticket by. */
export const ticketHash = (code: string): Uint8Array => sha256(utf8(code));

/** The ticket's public name (audit, answers), from its hash. */
export const ticketRef = (hash: Uint8Array): string => toHex(hash.subarray(0, 8));
