// The license applet's BACKUP (src/license/card/license-applet.ts INS 3C; Wibu 000 §2.1, §2.4, §2.6-2.8): a backup of
// three licensors' firm items that each licensor verifies alone, one SIGN AND INCREMENT for the whole backup, the clock
// moved to the backup time first, and its refusals.
import { describe, expect, it } from 'vitest';
import { COUNTER_MAX } from '../../../src/apdu/index.js';
import { bytesToUint, concatBytes, readUint16, toHex, uintToBytes } from '../../../src/bytes/index.js';
import {
  assembleBackup, decodeBackupLeaf, licenseStatusWord, merkleRoot, openHiddenData, parseContainerRecordText, splitBackup, verifyBackupItem,
} from '../../../src/license/index.js';
import { verifyRecord } from '../../../src/rental/index.js';
import { CARD_SERIAL, FIRM_CODE, FULL_PRODUCT, LICENSOR, LICENSOR_SEED, OTHER_LICENSOR, T0, TEST_PUBLIC_KEY } from '../../support/index.js';
import { THIRD_LICENSOR, THREE_FIRMS } from '../backup/backup-fixture.js';
import { licenseCard, nonce } from './license-card-fixture.js';

const backup = (hostTime: number, fill = 4) => concatBytes(nonce(fill), uintToBytes(BigInt(hostTime), 8));

/** BACKUP's answer: counter (16) ‖ signature (64) ‖ text length (2) ‖ text ‖ field(01, leaf)*. */
function parseAnswer(data: Uint8Array, fill = 4) {
  const length = readUint16(data, 80);
  const text = new TextDecoder().decode(data.subarray(82, 82 + length));
  const leaves: Uint8Array[] = [];
  for (let offset = 82 + length; offset < data.length;) {
    expect(data[offset]).toBe(0x01);
    const size = Number(bytesToUint(data.subarray(offset + 1, offset + 5)));
    leaves.push(data.slice(offset + 5, offset + 5 + size));
    offset += 5 + size;
  }
  return { record: { nonce: nonce(fill), counter: bytesToUint(data.subarray(0, 16)), signature: data.slice(16, 80), text }, leaves };
}

const box = { serial: CARD_SERIAL, cardPublicKey: TEST_PUBLIC_KEY, keyMode: 'individual', containerFormat: 1 } as const;

describe('license applet: BACKUP', () => {
  it('backs up three firm items under one record that each licensor verifies for its own item alone', async () => {
    const { run, counter, trustRoot, store } = await licenseCard({ container: THREE_FIRMS, counter: 9n });
    const answer = await run(0x3c, backup(T0 + 3_600));
    expect(answer.sw).toBe(0x9000);
    const { record, leaves } = parseAnswer(answer.data);
    expect(verifyRecord(record, trustRoot)).toBe(true);
    expect(record.counter).toBe(9n);
    expect(await counter()).toBe(10n); // one SIGN AND INCREMENT for the whole backup
    expect(parseContainerRecordText(record.text)).toEqual({ kind: 'backup', items: 3, root: toHex(merkleRoot(leaves)), at: T0 + 3_600 });
    expect(store.read().clock).toBe(T0 + 3_600); // the clock moved to the backup time

    const file = assembleBackup({ box, record, leaves, user: [] });
    const items = splitBackup(file);
    const keys = [LICENSOR.publicKey, OTHER_LICENSOR.publicKey, THIRD_LICENSOR.publicKey];
    items.forEach((item, i) => {
      const verified = verifyBackupItem(item, { licensorKey: keys[i]!, cardPublicKey: TEST_PUBLIC_KEY });
      expect(verified.firm.firmCode).toBe(FIRM_CODE + i);
      expect(verified.time).toBe(T0 + 3_600);
      expect(() => verifyBackupItem(item, { licensorKey: keys[(i + 1) % 3]!, cardPublicKey: TEST_PUBLIC_KEY })).toThrow(/another licensor/);
    });
    // The first licensor's hidden data, sealed to it alone; no secret data anywhere.
    const first = decodeBackupLeaf(leaves[0]!);
    expect(openHiddenData(LICENSOR_SEED, { serial: CARD_SERIAL, firmCode: FIRM_CODE, productCode: 7, updateCounter: 3 }, first.hiddenBoxes[0]!.box)).toEqual(FULL_PRODUCT.hiddenData);
    expect(first.firm.products.every((product) => product.secretData.length === 0 && product.hiddenData.length === 0)).toBe(true);
  });

  it('takes the container\'s clock as the backup time when the host lags it within the tolerance, and stores nothing', async () => {
    const { run, store } = await licenseCard({ container: THREE_FIRMS });
    let writes = 0;
    const write = store.write.bind(store);
    store.write = (next) => {
      writes += 1;
      write(next);
    };
    const answer = await run(0x3c, backup(T0 - 299));
    expect(answer.sw).toBe(0x9000);
    expect(parseContainerRecordText(parseAnswer(answer.data).record.text)).toMatchObject({ at: T0 });
    expect(writes).toBe(0);
  });

  it('backs up an empty container as no leaves', async () => {
    const { run } = await licenseCard();
    const { record, leaves } = parseAnswer((await run(0x3c, backup(T0))).data);
    expect(leaves).toEqual([]);
    expect(parseContainerRecordText(record.text)).toMatchObject({ items: 0, root: toHex(merkleRoot([])) });
  });

  it.each<[string, Uint8Array, number]>([
    ['a host clock set back past the tolerance', backup(T0 - 301), licenseStatusWord('clock-set-back')],
    ['a host time past 2^40', backup(2 ** 40 + 1), licenseStatusWord('input')],
    ['a nonce only', nonce(1), 0x6700],
    ['a 4-byte host time', concatBytes(nonce(1), new Uint8Array(4)), 0x6700],
    ['a byte too many', concatBytes(backup(T0), Uint8Array.of(0)), 0x6700],
  ])('%s: %s, and nothing changes', async (_name, data, sw) => {
    const { run, store, counter } = await licenseCard({ container: THREE_FIRMS });
    expect((await run(0x3c, data)).sw).toBe(sw);
    expect(store.read()).toEqual(THREE_FIRMS);
    expect(await counter()).toBe(0n);
  });

  it('a signature the card refuses (counter exhausted) answers 6985 and puts the clock back', async () => {
    const { run, store } = await licenseCard({ container: THREE_FIRMS, counter: COUNTER_MAX });
    expect((await run(0x3c, backup(T0 + 3_600))).sw).toBe(0x6985);
    expect(store.read().clock).toBe(T0);
  });
});
