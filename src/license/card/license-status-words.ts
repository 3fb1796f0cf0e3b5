// The license applet's refusals as status words: 91xx, xx the index of the reason in LICENSE_REASONS
// (src/license/license-error.ts). SW1 91 is outside ISO/IEC 7816-4's interindustry values (5.6: 9xxx other than 9000
// is proprietary), so the card never answers it for anything else.
import { LICENSE_REASONS, type LicenseReason } from '../license-error.js';

const LICENSE_SW1 = 0x91;

export function licenseStatusWord(reason: LicenseReason): number {
  const index = LICENSE_REASONS.indexOf(reason);
  if (index < 0) throw new RangeError(`expected a license reason, got ${String(reason).slice(0, 40)}`);
  return (LICENSE_SW1 << 8) | index;
}

/** The reason a 91xx status word stands for, or undefined for any other status word. */
export function licenseReasonOfStatusWord(sw: number): LicenseReason | undefined {
  return sw >> 8 === LICENSE_SW1 ? LICENSE_REASONS[sw & 0xff] : undefined;
}
