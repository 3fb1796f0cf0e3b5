// The sealed form of a card's protected information as the server stores it and insert and remove
// carry it (DESIGN.md "Keys and secrets"): nonce (24) ‖ XChaCha20-Poly1305 ciphertext ‖ tag (16).
// Its sizes live here, beside the message that carries it, so the card can hold its information to
// what a remove can carry, whatever backs it.
import { MAX_SEALED_BYTES } from './operation-messages.js';

export const SEAL_NONCE_LENGTH = 24;
export const SEAL_TAG_LENGTH = 16;
/** What sealing adds to the encoded information. */
export const SEALING_OVERHEAD = SEAL_NONCE_LENGTH + SEAL_TAG_LENGTH;
/**
 * The largest encoded protected information (protected-information-codec.ts) a remove can carry once
 * sealed. Every backing holds a card to it, so a card that runs can always be given back.
 */
export const MAX_PROTECTED_INFORMATION_BYTES = MAX_SEALED_BYTES - SEALING_OVERHEAD;
