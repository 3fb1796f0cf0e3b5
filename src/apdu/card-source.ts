// The card's contract with whatever holds it (a reader slot, a vpcd bridge): behaves like a card at
// the contacts (vicc's shape). It belongs to the card: readers depend on it, never the other way round.

/**
 * A card as a reader sees it. The card OS implements it; so can a bridge to another card.
 * `transmit` never rejects for card-level errors: those are status words in the response.
 * It may reject only when the card itself is gone (a remote card whose link dropped).
 */
export interface CardSource {
  /** Answer-to-reset, sent by the card after power-on or reset. */
  readonly atr: Uint8Array;
  /** Cold reset: all volatile state (selected applets, PIN status, pending chains) is lost. */
  powerOn(): void;
  powerOff(): void;
  /** Warm reset: same volatile-state loss as a cold reset. */
  reset(): void;
  /** One command APDU in, one response APDU out (data ‖ SW1 SW2). */
  transmit(command: Uint8Array): Promise<Uint8Array>;
}
