// One JSON request to the restore hub (src/license/hub) from the customer's commands: a refusal comes back as the
// hub's LicenseError (its reason and message), an unreachable hub or a non-JSON answer as one readable line.
import { VscError } from '../../errors/index.js';

const TIMEOUT_MS = 30_000;
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export async function hubCall(hub: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const { LicenseError, isLicenseReason } = await import('../../license/index.js');
  let url: URL;
  try {
    url = new URL(path, hub);
  } catch {
    throw new VscError('license.input', `expected the hub's URL as http://HOST:PORT, got ${JSON.stringify(hub.slice(0, 60))}`, { exitCode: 2 });
  }
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method, headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error',
    });
    text = await response.text();
  } catch (error) {
    throw new VscError('license.card', `the restore hub at ${url.origin} cannot be reached: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    if (text.length > MAX_ANSWER_BYTES) throw new Error('too long');
    value = JSON.parse(text);
  } catch {
    throw new VscError('license.card', `the restore hub answered HTTP ${response.status} with something that is not JSON`);
  }
  const record = value as { error?: { reason?: unknown; message?: unknown } } | null;
  if (!response.ok) {
    const error = record?.error;
    if (isLicenseReason(error?.reason) && typeof error.message === 'string') throw new LicenseError(error.reason, `the restore hub refused: ${error.message.slice(0, 500)}`);
    throw new VscError('license.card', `the restore hub failed (HTTP ${response.status})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new VscError('license.card', 'the restore hub answered something else than a JSON object');
  return value as Record<string, unknown>;
}
