// Answer-to-reset of the virtual card, ISO/IEC 7816-3 section 8.2 (T=1 only) with
// historical bytes per ISO/IEC 7816-4 section 8.1.1.

const MAX_HISTORICAL_BYTES = 15;

/**
 * Historical bytes: category indicator 80 (compact-TLV follows), then
 *   53 56 53 43   card issuer's data (tag 5, length 3): "VSC"
 *   73 C0 01 80   card capabilities (tag 7, length 3): selection by full and partial DF name;
 *                 data units of one byte; command chaining (no extended Lc/Le: vpcd is short-only).
 */
export const VSC_HISTORICAL_BYTES = Uint8Array.of(0x80, 0x53, 0x56, 0x53, 0x43, 0x73, 0xc0, 0x01, 0x80);

/**
 * Builds a T=1-only ATR: 3B (direct convention), T0 = 8K (TD1 present, K historical bytes),
 * TD1 = 81 (TD2 present, T=1), TD2 = 31 (TA3 and TB3 present, T=1), TA3 = FE (IFSC 254),
 * TB3 = 45 (BWI 4, CWI 5), historical bytes, TCK (XOR of T0 up to TCK is zero).
 */
export function buildAtr(historical: Uint8Array = VSC_HISTORICAL_BYTES): Uint8Array {
  if (historical.length > MAX_HISTORICAL_BYTES) {
    throw new RangeError(`expected at most ${MAX_HISTORICAL_BYTES} historical bytes, got ${historical.length}`);
  }
  const body = [0x80 | historical.length, 0x81, 0x31, 0xfe, 0x45, ...historical];
  const tck = body.reduce((acc, byte) => acc ^ byte, 0);
  return Uint8Array.of(0x3b, ...body, tck);
}
