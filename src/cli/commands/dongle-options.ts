// What every dongle command shares: how a dongle is named (--dongle URI) and where its PIN comes from when
// the URI names no pin-source (--dongle-pin-file, else a no-echo prompt on a terminal).
import { utf8 } from '../../bytes/index.js';
import { UsageError } from '../../errors/index.js';
import { optionText as text, type OptionSpec, type OptionValues } from '../command.js';

const client = () => import('../../vsc-client/index.js');

export const DONGLE_OPTIONS: Record<string, OptionSpec> = {
  dongle: { type: 'string', value: 'URI', description: 'the dongle: pkcs11:token=LABEL?module-path=/path/module.so&pin-source=file:/path (RFC 7512), or emulated:/path/to/dir (a directory: for development, not duplication-protected)' },
  'dongle-pin-file': { type: 'string', value: 'FILE', description: 'read the token PIN (or the emulated dongle\'s passphrase) from the first line of FILE when the URI has no pin-source' },
};

/**
 * Where a dongle's PIN comes from when its URI names no pin-source: the first line of --dongle-pin-file, else a
 * no-echo prompt on a terminal, else a usage error naming --dongle-pin-file. For dongleSecrets(fallback).
 */
export function donglePinFallback(values: OptionValues): (what: string) => Promise<Uint8Array> {
  return async (what) => {
    const file = text(values, 'dongle-pin-file');
    const { readPassword, readSecretLine } = await client();
    if (file !== undefined) return utf8(readSecretLine(file, '--dongle-pin-file'));
    if (process.stdin.isTTY !== true) throw new UsageError(`no terminal to ask for ${what}: use --dongle-pin-file FILE, or pin-source=file:/path in the dongle URI`);
    return readPassword(undefined, `${what.charAt(0).toUpperCase()}${what.slice(1)}: `);
  };
}
