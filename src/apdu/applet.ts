// The contract between the card OS and an applet (one application on the card, selected by AID).
import type { CommandApdu } from './command-apdu.js';

/**
 * An applet handles the commands of its application once selected. It answers with response data
 * or throws SwError; the card OS does the rest (Le, 61xx / GET RESPONSE, command chaining).
 * Handlers may be async; the card OS runs one command at a time across all users of the card.
 */
export interface Applet {
  /** Full application identifier (5 to 16 bytes). */
  readonly aid: Uint8Array;
  /** Short human-readable name for logs. */
  readonly name: string;
  /** Called when SELECT picks this applet; returns the SELECT response data (FCI, APT, or empty). */
  select(): Uint8Array | Promise<Uint8Array>;
  /** Called when another applet is selected, or the card is reset or powered off. */
  deselect(): void;
  /** Processes a complete command (chained parts already joined) and returns the response data. */
  process(command: CommandApdu): Uint8Array | Promise<Uint8Array>;
}
