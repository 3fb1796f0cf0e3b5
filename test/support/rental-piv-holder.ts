// A program the rental end-to-end tests spawn: another application using the card's PIV applet through pcscd while
// the rental server writes. It connects (shared), SELECTs the PIV applet, holds its connection for HOLD_MS while the
// PIV applet is its current application, then sends GET DATA (CHUID), which only the PIV applet answers: had a Write's
// SELECT of the VSC applet come in between, the VSC applet would refuse it (CLA 00). Prints what it saw.
// Usage: node --import tsx rental-piv-holder.ts READER HOLD_MS
import { setTimeout as sleep } from 'node:timers/promises';
import { connectPcscd } from '../../src/reader-driver/index.js';

const [reader, holdText] = process.argv.slice(2);
if (reader === undefined || holdText === undefined) throw new Error('usage: rental-piv-holder.ts READER HOLD_MS');
const SELECT_PIV = Uint8Array.of(0x00, 0xa4, 0x04, 0x00, 0x09, 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00);
/** GET DATA, tag list 5C 03 5F C1 02: the CHUID (SP 800-73-4 Part 1, Table 3). */
const GET_CHUID = Uint8Array.of(0x00, 0xcb, 0x3f, 0xff, 0x05, 0x5c, 0x03, 0x5f, 0xc1, 0x02, 0x00);

const sw = (response: Uint8Array) => Buffer.from(response.subarray(response.length - 2)).toString('hex');
const connection = await connectPcscd(reader);
try {
  const selected = await connection.transmit(SELECT_PIV);
  console.log(`holding ${Date.now()} select=${sw(selected)}`);
  await sleep(Number(holdText));
  const answer = await connection.transmit(GET_CHUID);
  console.log(`still-piv ${Date.now()} sw=${sw(answer)}`);
} finally {
  connection.disconnect();
  console.log(`released ${Date.now()}`);
}
