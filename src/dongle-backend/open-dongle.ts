// Opens the dongle a URI names (DESIGN.md "Dongle-backed card"): `pkcs11:...` (RFC 7512) for any PKCS#11
// token, `emulated:/path` for the emulated one. The PKCS#11 dongle is loaded only when asked for, so a
// machine without the compiled pkcs11js module still runs everything else, the emulated dongle included.
import { readPrivateFile } from '../files/index.js';
import { wipe } from '../bytes/index.js';
import { ExitCode, VscError } from '../errors/index.js';
import { DongleError, type Dongle, type DongleSecrets } from './dongle.js';
import { EMULATED_SCHEME, openEmulatedDongle } from './emulated-dongle.js';

export const PKCS11_SCHEME = 'pkcs11:';

export async function openDongle(uri: string, secrets: DongleSecrets): Promise<Dongle> {
  if (uri.startsWith(EMULATED_SCHEME)) return openEmulatedDongle(uri, secrets);
  if (uri.startsWith(PKCS11_SCHEME)) {
    const { openPkcs11Dongle } = await import('./pkcs11-dongle.js');
    return openPkcs11Dongle(uri, secrets);
  }
  throw new DongleError('uri', `expected a dongle URI starting with ${PKCS11_SCHEME} or ${EMULATED_SCHEME}, got ${JSON.stringify(uri.slice(0, 40))}`, { exitCode: ExitCode.usage });
}

/**
 * PINs from RFC 7512's `pin-source=file:/path` (the file's first line; refused when others may read it),
 * else from `fallback` (a --dongle-pin-file, or a prompt on a terminal).
 */
export function dongleSecrets(fallback: (what: string) => Promise<Uint8Array>): DongleSecrets {
  return {
    pin: async (source, what) => {
      if (source === undefined) return fallback(what);
      if (!source.startsWith('file:')) throw new DongleError('uri', `pin-source: expected file:/path, got ${JSON.stringify(source.slice(0, 40))}`, { exitCode: ExitCode.usage });
      const path = source.startsWith('file://') ? source.slice('file://'.length) : source.slice('file:'.length);
      let bytes: Uint8Array;
      try {
        bytes = readPrivateFile(path);
      } catch (error) {
        if (error instanceof VscError) throw error; // a file others may read: names chmod 600
        throw new DongleError('pin', `pin-source: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { exitCode: ExitCode.usage });
      }
      return firstLine(bytes, `pin-source ${path}`);
    },
  };
}

/** The first line of a secret file's bytes, which are wiped. */
function firstLine(bytes: Uint8Array, what: string): Uint8Array {
  try {
    let end = bytes.indexOf(0x0a);
    if (end < 0) end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end -= 1;
    if (end === 0) throw new DongleError('pin', `${what} has an empty first line`, { exitCode: ExitCode.usage });
    return bytes.slice(0, end);
  } finally {
    wipe(bytes);
  }
}
