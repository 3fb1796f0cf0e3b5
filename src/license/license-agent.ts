// The license agent: the license container's extension of the machine's rental server (patent 003 [0058]: one process
// owns the card and the trail; DESIGN.md "License containers"). Programs and `vsc license` reach the container through
// it; every card command that signs (a use, an update's receipt) is a journaled Write of the rental server, so its record
// is in the trail, fsynced, before the answer: the licensor reproduces usage from the trail.
//
// Ops (rental-protocol.ts "Extensions"; keys lowercase hex, records trail-line objects):
//   license.read       {}                                        -> {"container": hex of the container codec (public view)}
//   license.use        {"request": USE-REQUEST (use-request-json.ts)} -> {"record"} | {"refused": {"reason", "message"}}
//   license.apply      {"update": signed update or time certificate file text} -> {"record"} | {"refused"}
//   license.bindings   {}                                        -> {"bindings": [card binding file text, ...]}
//   license.bind       {"binding": card binding file text}       -> {"stored": true}  (a licensor's binding of this card)
//   license.hidden     {"licensorKey", "productCode"}            -> {"sealed": hex}  (hidden data sealed to the licensor)
//   license.challenge  {"licensorKey", "productCode", "challenge"} -> {"response": hex}  (keyed by secret data)
//   license.user-data  {"licensorKey", "productCode", "data"}    -> {"written": true}
//   license.backup     {}                                        -> {"backup": {"path", "time", "firms", "leftOut"}} | {"refused"}
//                      (on demand; the agent also backs up after updates and by interval: license-backups.ts)
//   license.backup-status {}                                     -> {"latest"?: {...}, "lastFailure"?: {"at", "trigger", "message"}}
//   license.backup-settings {"settings"?: settings file text}    -> {"settings": text}  (replaced first when given)
//   license.locking    {"sequence": lock or unlock sequence text} -> {"record"} | {"refused"}  (000 §2.10)
// A refusal by the card ("refused") is an answer: the program learns why. Malformed fields are refused by the rental
// server's protocol with reason "input", and nothing reaches the card.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual, fromHex, toHex } from '../bytes/index.js';
import { ensurePrivateDirectory, writeFileAtomic } from '../files/index.js';
import { encodeRecordLine, RentalError, type AuditRecord, type RentalExtensions, type RentalServer } from '../rental/index.js';
import { encodeCardBinding, parseCardBinding, verifyCardBinding } from './card-binding.js';
import { encodeLicenseContainer } from './license-container-codec.js';
import { LicenseError } from './license-error.js';
import { licensorDigest } from './license-record-text.js';
import { MAX_CODE, MAX_ITEM_DATA_BYTES } from './license-model.js';
import { MAX_UPDATE_BYTES, parseSignedBody } from './license-update.js';
import { useRequestFromJson } from './use-request-json.js';
import { LicenseAppletClient } from './card/index.js';
import { encodeBackupSettings } from './backup/index.js';
import { LicenseBackups, type LicenseBackupsOptions } from './license-backups.js';
import { parseLockSequence } from './locking/index.js';

export const LICENSE_OPS = [
  'license.read', 'license.use', 'license.apply', 'license.bindings', 'license.bind', 'license.hidden', 'license.challenge', 'license.user-data', 'license.backup', 'license.backup-status',
  'license.backup-settings', 'license.locking',
] as const;
/** Card bindings live in this directory under the rental trail's directory, one file per licensor. */
export const BINDINGS_DIRECTORY_NAME = 'licenses';
const MAX_BINDINGS = 1000;

type Fields = Readonly<Record<string, unknown>>;

function input(message: string): RentalError {
  return new RentalError('input', message);
}

function only(fields: Fields, op: string, keys: readonly string[]): void {
  const extra = Object.keys(fields).find((key) => !keys.includes(key));
  if (extra !== undefined) throw input(`${op}: expected only the fields ${['id', 'op', ...keys].join(', ')}, got ${JSON.stringify(extra.slice(0, 32))}`);
  const missing = keys.find((key) => !(key in fields));
  if (missing !== undefined) throw input(`${op}: missing field ${missing}`);
}

function hexField(fields: Fields, op: string, key: string, min: number, max: number): Uint8Array {
  const value = fields[key];
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(value) || value.length < min * 2 || value.length > max * 2) {
    throw input(`${op}: expected ${key} as ${min === max ? min : `${min}..${max}`} bytes of lowercase hex`);
  }
  return fromHex(value);
}

function codeField(fields: Fields, op: string): number {
  const value = fields['productCode'];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_CODE) throw input(`${op}: expected productCode as a whole number 0..${MAX_CODE}`);
  return value;
}

function recordJson(record: AuditRecord): unknown {
  return JSON.parse(encodeRecordLine(record)) as unknown;
}

function refusedJson(error: unknown): Fields {
  if (error instanceof LicenseError) return { refused: { reason: error.reason, message: error.message.split('\n')[0]!.slice(0, 400) } };
  throw error;
}

export interface LicenseExtensionOptions {
  /** The backups' clock and interval check (license-backups.ts). */
  readonly backups?: LicenseBackupsOptions;
}

/** The license ops for `server`, whose trail lives in `trailDirectory` (card bindings and backups are kept beside it). */
export function licenseExtensions(server: RentalServer, trailDirectory: string, options: LicenseExtensionOptions = {}): RentalExtensions {
  const bindingsDirectory = join(trailDirectory, BINDINGS_DIRECTORY_NAME);
  const card = server.card;
  const backups = new LicenseBackups(server, bindingsDirectory, options.backups);

  const applet = async <T>(body: (client: LicenseAppletClient) => Promise<T>): Promise<T> =>
    server.withCard(async ({ transport, client: vsc }) => {
      const license = new LicenseAppletClient(transport);
      await license.select();
      try {
        return await body(license);
      } finally {
        await vsc.select();
      }
    });

  /** A card command that signs a record of its own: a journaled Write; the card's refusal comes back as an answer. */
  const signed = async (describe: string, run: (client: LicenseAppletClient, nonce: Uint8Array) => Promise<{ counter: bigint; signature: Uint8Array; text: string }>): Promise<Fields> => {
    try {
      const answer = await server.cardWrite(describe, async ({ transport }, nonce) => {
        const license = new LicenseAppletClient(transport);
        try {
          await license.select();
          return await run(license, nonce);
        } catch (error) {
          if (error instanceof LicenseError) return { refused: error };
          throw error;
        }
      });
      return { record: recordJson(answer.record) };
    } catch (error) {
      return refusedJson(error);
    }
  };

  const ops: Array<[string, (fields: Fields) => Promise<Fields>]> = [
    ['license.read', async (fields) => {
      only(fields, 'license.read', []);
      return { container: toHex(encodeLicenseContainer(await applet((client) => client.readContainer()))) };
    }],
    ['license.use', async (fields) => {
      only(fields, 'license.use', ['request']);
      let request;
      try {
        request = useRequestFromJson(fields['request']);
      } catch (error) {
        throw input((error as Error).message);
      }
      return signed(`license use pending for product ${request.productCode}`, (client, nonce) => client.use(nonce, request));
    }],
    ['license.apply', async (fields) => {
      only(fields, 'license.apply', ['update']);
      const update = fields['update'];
      if (typeof update !== 'string' || update.length === 0 || update.length > MAX_UPDATE_BYTES) throw input(`license.apply: expected update as the text of an update file of at most ${MAX_UPDATE_BYTES} bytes`);
      try {
        parseSignedBody(update); // a file that is no update never reaches the card
      } catch (error) {
        return refusedJson(error);
      }
      const answer = await signed('license update pending', (client, nonce) => client.apply(nonce, new TextEncoder().encode(update)));
      // 000 §2.1 trigger (1): a backup after an update of the firm item, made after the answer, in turn with the Writes.
      if ('record' in answer) void backups.trigger('update', parseSignedBody(update).body.licensorKey);
      return answer;
    }],
    ['license.backup', async (fields) => {
      only(fields, 'license.backup', []);
      try {
        return { backup: await backups.trigger('demand') };
      } catch (error) {
        return refusedJson(error);
      }
    }],
    ['license.backup-status', async (fields) => {
      only(fields, 'license.backup-status', []);
      return { ...backups.status() };
    }],
    ['license.backup-settings', async (fields) => {
      const keys = Object.keys(fields);
      if (keys.some((key) => key !== 'settings')) throw input('license.backup-settings: expected only the fields id, op, settings');
      const text = fields['settings'];
      try {
        if (text !== undefined) {
          if (typeof text !== 'string' || text.length > 256 * 1024) throw input('license.backup-settings: expected settings as the text of a settings file');
          return { settings: encodeBackupSettings(backups.writeSettings(text)) };
        }
        return { settings: encodeBackupSettings(backups.settings()) };
      } catch (error) {
        return refusedJson(error);
      }
    }],
    ['license.locking', async (fields) => {
      only(fields, 'license.locking', ['sequence']);
      const sequence = fields['sequence'];
      if (typeof sequence !== 'string' || sequence.length === 0 || sequence.length > 4096) throw input('license.locking: expected sequence as the text of a lock or unlock sequence file');
      try {
        parseLockSequence(sequence); // a file that is no sequence never reaches the card
      } catch (error) {
        return refusedJson(error);
      }
      return signed('license locking pending', (client, nonce) => client.locking(nonce, sequence));
    }],
    ['license.bindings', async (fields) => {
      only(fields, 'license.bindings', []);
      return { bindings: readBindings(bindingsDirectory) };
    }],
    ['license.bind', async (fields) => {
      only(fields, 'license.bind', ['binding']);
      const text = fields['binding'];
      if (typeof text !== 'string' || text.length > 4096) throw input('license.bind: expected binding as the text of a card binding file');
      try {
        const binding = parseCardBinding(text);
        verifyCardBinding(binding, binding.licensorKey);
        if (binding.serial !== card.serial || !bytesEqual(binding.cardPublicKey, card.publicKey) || binding.keyMode !== card.keyMode) {
          throw new LicenseError('foreign', `the card binding names card ${binding.serial}, not this machine's card ${card.serial} with its key`);
        }
        ensurePrivateDirectory(bindingsDirectory);
        writeFileAtomic(join(bindingsDirectory, `${licensorDigest(binding.licensorKey)}.json`), new TextEncoder().encode(`${encodeCardBinding(binding)}\n`));
        return { stored: true };
      } catch (error) {
        return refusedJson(error);
      }
    }],
    ['license.hidden', async (fields) => {
      only(fields, 'license.hidden', ['licensorKey', 'productCode']);
      const licensorKey = hexField(fields, 'license.hidden', 'licensorKey', 32, 32);
      const productCode = codeField(fields, 'license.hidden');
      try {
        return { sealed: toHex(await applet((client) => client.readHidden(licensorKey, productCode))) };
      } catch (error) {
        return refusedJson(error);
      }
    }],
    ['license.challenge', async (fields) => {
      only(fields, 'license.challenge', ['licensorKey', 'productCode', 'challenge']);
      const licensorKey = hexField(fields, 'license.challenge', 'licensorKey', 32, 32);
      const productCode = codeField(fields, 'license.challenge');
      const challenge = hexField(fields, 'license.challenge', 'challenge', 1, 64);
      try {
        return { response: toHex(await applet((client) => client.secretChallenge(licensorKey, productCode, challenge))) };
      } catch (error) {
        return refusedJson(error);
      }
    }],
    ['license.user-data', async (fields) => {
      only(fields, 'license.user-data', ['licensorKey', 'productCode', 'data']);
      const licensorKey = hexField(fields, 'license.user-data', 'licensorKey', 32, 32);
      const productCode = codeField(fields, 'license.user-data');
      const data = hexField(fields, 'license.user-data', 'data', 0, MAX_ITEM_DATA_BYTES);
      try {
        await applet((client) => client.writeUserData(licensorKey, productCode, data));
        return { written: true };
      } catch (error) {
        return refusedJson(error);
      }
    }],
  ];
  return new Map(ops);
}

/** The stored card bindings' texts; a file that is not a binding is skipped (the program checks what it uses). */
function readBindings(directory: string): string[] {
  let names: string[];
  try {
    names = readdirSync(directory).filter((name) => /^[0-9a-f]{32}\.json$/.test(name)).slice(0, MAX_BINDINGS);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    try {
      out.push(encodeCardBinding(parseCardBinding(readFileSync(join(directory, name), 'utf8').trim())));
    } catch {
      // Not a binding: ignored.
    }
  }
  return out;
}
