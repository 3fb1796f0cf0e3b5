// The licensor's view of what a container used, reproduced from the rental trail (DESIGN.md "License containers": "its
// records in the rental trail prove the usage"): every license record of one licensor, its signature checked under
// the bound card key, summed per product; counters the trail lacks are reported, since a use may hide there.
import { TrailFile, verifyRecord, type TrustRoot } from '../rental/index.js';
import { LicenseError } from './license-error.js';
import { licensorDigest, parseLicenseRecordText } from './license-record-text.js';

export interface ProductUsage {
  readonly productCode: number;
  readonly uses: number;
  readonly units: number;
  /** What the card said was left after the last use. */
  readonly lastLeft: number | 'unlimited';
  readonly firstAt: number;
  readonly lastAt: number;
}

export interface UsageReport {
  readonly licensor: string;
  readonly firmCode: number | undefined;
  readonly products: readonly ProductUsage[];
  /** Updates of this licensor the card applied (receipts in the trail). */
  readonly updates: number;
  /** Records of the trail (any kind) and counter ranges the trail lacks. */
  readonly records: number;
  readonly missing: ReadonlyArray<{ readonly from: bigint; readonly to: bigint }>;
}

/** Reads the trail at `path`; a record with a bad signature is refused ('signature'), naming its counter. */
export async function licenseUsageReport(path: string, card: TrustRoot, licensorKey: Uint8Array): Promise<UsageReport> {
  const licensor = licensorDigest(licensorKey);
  const products = new Map<number, { uses: number; units: number; lastLeft: number | 'unlimited'; firstAt: number; lastAt: number }>();
  const missing: Array<{ from: bigint; to: bigint }> = [];
  let firmCode: number | undefined;
  let updates = 0;
  let records = 0;
  let expected: bigint | undefined;
  for await (const record of new TrailFile(path).records()) {
    records += 1;
    if (expected !== undefined && record.counter > expected) missing.push({ from: expected, to: record.counter - 1n });
    expected = record.counter + 1n;
    if (!record.text.startsWith('license ')) continue;
    let text;
    try {
      text = parseLicenseRecordText(record.text);
    } catch {
      continue;
    }
    if (text.licensor !== licensor) continue;
    if (!verifyRecord(record, card)) throw new LicenseError('signature', `the trail's license record at counter ${record.counter} was not signed by card ${card.serial}`);
    firmCode = text.firmCode;
    if (text.kind === 'update') updates += 1;
    if (text.kind !== 'use') continue;
    const entry = products.get(text.productCode);
    if (entry === undefined) {
      products.set(text.productCode, { uses: 1, units: text.units, lastLeft: text.left, firstAt: text.at, lastAt: text.at });
    } else {
      entry.uses += 1;
      entry.units += text.units;
      entry.lastLeft = text.left;
      entry.lastAt = text.at;
    }
  }
  return {
    licensor, firmCode, updates, records, missing,
    products: [...products.entries()].sort(([a], [b]) => a - b).map(([productCode, entry]) => ({ productCode, ...entry })),
  };
}
