// A LicenseCardLink through the machine's license agent (license-agent.ts, on the rental server's socket): what
// programs and `vsc license` use to reach the container. It checks every answer's shape; what the answers mean (whose
// card signed, what it decided) the caller checks against a licensor's card binding (license-sdk.ts).
import { randomBytes } from 'node:crypto';
import { fromHex, toHex } from '../bytes/index.js';
import { NONCE_LENGTH, parseRecordLine, RentalClient, RentalProtocolError, type AuditRecord, type TrustRoot } from '../rental/index.js';
import { encodeCardBinding, parseCardBinding, type CardBinding } from './card-binding.js';
import type { LicenseCardLink } from './license-card-link.js';
import { decodeLicenseContainer } from './license-container-codec.js';
import { LICENSE_REASONS, LicenseError, type LicenseReason } from './license-error.js';
import type { LicenseContainer, UseRequest } from './license-model.js';
import { useRequestToJson } from './use-request-json.js';

type Fields = Readonly<Record<string, unknown>>;

function malformed(what: string): RentalProtocolError {
  return new RentalProtocolError(`the license agent's answer is malformed: ${what}`);
}

/** A {"record"} answer's record, or the card's refusal as a LicenseError. */
function recordOrRefusal(fields: Fields): AuditRecord {
  if ('refused' in fields) throw refusalOf(fields['refused']);
  const record = fields['record'];
  if (typeof record !== 'object' || record === null || Object.keys(fields).length !== 1) throw malformed('expected {"record"} or {"refused"}');
  try {
    return parseRecordLine(JSON.stringify(record));
  } catch (error) {
    throw malformed(`its record is not a trail record (${(error as Error).message})`);
  }
}

function refusalOf(value: unknown): LicenseError {
  if (typeof value !== 'object' || value === null) throw malformed('expected "refused" as {"reason", "message"}');
  const { reason, message } = value as Record<string, unknown>;
  if (typeof reason !== 'string' || !(LICENSE_REASONS as readonly string[]).includes(reason) || typeof message !== 'string') throw malformed('expected a known refusal reason and a message');
  return new LicenseError(reason as LicenseReason, message);
}

function hexAnswer(fields: Fields, key: string): Uint8Array {
  if ('refused' in fields) throw refusalOf(fields['refused']);
  const value = fields[key];
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(value)) throw malformed(`expected "${key}" as lowercase hex`);
  return fromHex(value);
}

/** A backup file the agent wrote (license-backups.ts). */
export interface AgentBackup {
  readonly path: string;
  readonly time: number;
  /** Firm codes in the file. */
  readonly firms: readonly number[];
  /** Firm codes left out: their licensor restores nothing, or every trigger is off. */
  readonly leftOut: readonly number[];
}

function agentBackupOf(value: unknown): AgentBackup {
  const backup = value as Record<string, unknown> | null;
  const codes = (list: unknown): list is number[] => Array.isArray(list) && list.every((code) => Number.isInteger(code));
  if (typeof backup !== 'object' || backup === null || typeof backup['path'] !== 'string' || typeof backup['time'] !== 'number' || !codes(backup['firms']) || !codes(backup['leftOut'])) {
    throw malformed('expected a backup as {"path", "time", "firms", "leftOut"}');
  }
  return { path: backup['path'], time: backup['time'], firms: backup['firms'], leftOut: backup['leftOut'] };
}

export class AgentLicenseLink implements LicenseCardLink {
  private constructor(private readonly client: RentalClient, readonly card: TrustRoot) {}

  /** Connects to the license agent of this machine (the rental server at `socket`, default its usual place). */
  static async connect(socket?: string): Promise<AgentLicenseLink> {
    const client = await RentalClient.connect(socket);
    try {
      const hello = await client.hello();
      return new AgentLicenseLink(client, hello.card);
    } catch (error) {
      client.close();
      throw error;
    }
  }

  async readContainer(): Promise<LicenseContainer> {
    return decodeLicenseContainer(hexAnswer(await this.client.extension('license.read', {}), 'container'));
  }

  async use(request: UseRequest): Promise<AuditRecord> {
    return recordOrRefusal(await this.client.extension('license.use', { request: useRequestToJson(request) }));
  }

  async apply(signedFile: string): Promise<AuditRecord> {
    return recordOrRefusal(await this.client.extension('license.apply', { update: signedFile }));
  }

  /** A plain trail record of `text` (a borrow certificate): the rental server's Write. */
  async writeText(text: string): Promise<AuditRecord> {
    return (await this.client.write(Uint8Array.from(randomBytes(NONCE_LENGTH)), text)).record;
  }

  async bindings(): Promise<readonly CardBinding[]> {
    const answer = await this.client.extension('license.bindings', {});
    const list = answer['bindings'];
    if (!Array.isArray(list) || list.some((entry) => typeof entry !== 'string')) throw malformed('expected "bindings" as a list of texts');
    return (list as string[]).map((text) => parseCardBinding(text));
  }

  /** Keeps a licensor's card binding beside the container (refused when it names another card). */
  async bind(binding: CardBinding): Promise<void> {
    const answer = await this.client.extension('license.bind', { binding: encodeCardBinding(binding) });
    if ('refused' in answer) throw refusalOf(answer['refused']);
  }

  async readHidden(licensorKey: Uint8Array, productCode: number): Promise<Uint8Array> {
    return hexAnswer(await this.client.extension('license.hidden', { licensorKey: toHex(licensorKey), productCode }), 'sealed');
  }

  async secretChallenge(licensorKey: Uint8Array, productCode: number, challenge: Uint8Array): Promise<Uint8Array> {
    return hexAnswer(await this.client.extension('license.challenge', { licensorKey: toHex(licensorKey), productCode, challenge: toHex(challenge) }), 'response');
  }

  async writeUserData(licensorKey: Uint8Array, productCode: number, data: Uint8Array): Promise<void> {
    const answer = await this.client.extension('license.user-data', { licensorKey: toHex(licensorKey), productCode, data: toHex(data) });
    if ('refused' in answer) throw refusalOf(answer['refused']);
  }

  /** Backs the container up now (the user's demand, 000 §2.1): the agent writes the file beside the trail. */
  async backup(): Promise<AgentBackup> {
    const answer = await this.client.extension('license.backup', {});
    if ('refused' in answer) throw refusalOf(answer['refused']);
    return agentBackupOf(answer['backup']);
  }

  /** The newest backup the agent made and its last automatic backup's failure, if any. */
  async backupStatus(): Promise<{ readonly latest?: AgentBackup; readonly lastFailure?: { readonly at: number; readonly trigger: string; readonly message: string } }> {
    const answer = await this.client.extension('license.backup-status', {});
    const failure = answer['lastFailure'] as Record<string, unknown> | undefined;
    if (failure !== undefined && (typeof failure !== 'object' || failure === null || typeof failure['at'] !== 'number' || typeof failure['trigger'] !== 'string' || typeof failure['message'] !== 'string')) throw malformed('expected lastFailure as {"at", "trigger", "message"}');
    return {
      ...(answer['latest'] === undefined ? {} : { latest: agentBackupOf(answer['latest']) }),
      ...(failure === undefined ? {} : { lastFailure: { at: failure['at'] as number, trigger: failure['trigger'] as string, message: failure['message'] as string } }),
    };
  }

  /** The backup settings file's text; replaced by `settings` first when given (the agent checks it). */
  async backupSettings(settings?: string): Promise<string> {
    const answer = await this.client.extension('license.backup-settings', settings === undefined ? {} : { settings });
    if ('refused' in answer) throw refusalOf(answer['refused']);
    if (typeof answer['settings'] !== 'string') throw malformed('expected "settings" as the settings file\'s text');
    return answer['settings'];
  }

  /** Applies a central authority's lock or unlock sequence (000 §2.10); the answer is the card's record of it. */
  async locking(sequence: string): Promise<AuditRecord> {
    return recordOrRefusal(await this.client.extension('license.locking', { sequence }));
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
