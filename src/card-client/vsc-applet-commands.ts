// The VSC applet's commands as records with named fields (DESIGN.md "The VSC applet": AID
// F0 56 53 43 00 01, CLA 80, INS 20/22/24/26), for the card client and for tools such as
// `opensc-tool -s HEX` that take the bytes.
import { commandApdu, COUNTER_LENGTH, HASH_LENGTH, VSC_AID, VSC_CLA, VscIns, type CommandApdu } from '../apdu/index.js';
import { ED25519_PUBLIC_KEY_LENGTH } from '../crypto/index.js';
import { assertBytes } from '../errors/index.js';

const SELECT = { cla: 0x00, ins: 0xa4, p1: 0x04 /* select by DF name */, p2: 0x00 /* first or only occurrence */ } as const;
/** P1 of SIGN AND INCREMENT: 00 on an individual-key card, 01 on a universal-key card (003 [0098]-[0100]). */
const P1_OF_KEY_MODE = { individual: 0x00, universal: 0x01 } as const;

export const vscCommands = {
  /** SELECT by AID. */
  select: (): CommandApdu => commandApdu({ ...SELECT, data: VSC_AID }),
  getSerialNumber: (): CommandApdu => commandApdu({ cla: VSC_CLA, ins: VscIns.GET_SERIAL_NUMBER, ne: 256 }),
  getCounter: (): CommandApdu => commandApdu({ cla: VSC_CLA, ins: VscIns.GET_COUNTER, ne: COUNTER_LENGTH }),
  /** h is the 32-byte hash to sign; the card signs SHA-256(h ‖ [serial ‖] counter). */
  signAndIncrement: (h: Uint8Array, keyMode: keyof typeof P1_OF_KEY_MODE = 'individual'): CommandApdu => {
    assertBytes('h', h, HASH_LENGTH);
    return commandApdu({ cla: VSC_CLA, ins: VscIns.SIGN_AND_INCREMENT, p1: P1_OF_KEY_MODE[keyMode], data: h, ne: 256 });
  },
  getPublicKey: (): CommandApdu => commandApdu({ cla: VSC_CLA, ins: VscIns.GET_PUBLIC_KEY, ne: ED25519_PUBLIC_KEY_LENGTH }),
} as const;
