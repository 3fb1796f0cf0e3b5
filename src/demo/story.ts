// The narrator of `npm run demo`: numbered steps, indented lines, and APDUs shown as they went.
import { describeStatusWord, parseResponseApdu, type ResponseApdu } from '../apdu/index.js';
import { fromHex, toHex } from '../bytes/index.js';
import type { CardHandle } from '../reader-driver/index.js';

/** Where the demo writes; a hook so that tests can capture it. */
export type Narrator = (line: string) => void;

export function spaced(bytes: Uint8Array, max = 24): string {
  const hex = toHex(bytes.length > max ? bytes.subarray(0, max) : bytes).toUpperCase().replace(/(..)(?!$)/g, '$1 ');
  return bytes.length > max ? `${hex} … (${bytes.length} bytes)` : hex;
}

export class Story {
  private step = 0;
  constructor(private readonly say: Narrator) {}

  heading(title: string): void {
    this.step++;
    this.say('');
    this.say(`${this.step}. ${title}`);
  }

  line(text: string): void {
    this.say(`   ${text}`);
  }

  async apdu(handle: CardHandle, hex: string, what: string): Promise<ResponseApdu> {
    const command = fromHex(hex);
    this.line(`→ ${spaced(command)}   ${what}`);
    const response = parseResponseApdu(await handle.transmit(command));
    const data = response.data.length > 0 ? `${spaced(response.data)}  ` : '';
    this.line(`← ${data}${describeStatusWord(response.sw)}`);
    return response;
  }
}

