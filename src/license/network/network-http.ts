// How a program reaches a network license server (Wibu 002 Table 1: network license, standby, high availability):
// one JSON request with a deadline. A server that does not answer, or answers 5xx, is unavailable (another server may
// be asked: standby, high availability); a 4xx answer is its refusal, a LicenseError with the server's reason.
import { LICENSE_REASONS, LicenseError, type LicenseReason } from '../license-error.js';

/** Bytes of an answer read at most: a lease or certificate is far smaller. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The server did not answer, or could not serve: ask another one. */
export class LicenseServerUnavailableError extends LicenseError {
  constructor(readonly server: string, message: string, options: { cause?: unknown } = {}) {
    super('card', message, options);
  }
}

export function checkServerUrl(url: string, what = 'license server'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LicenseError('input', `expected the ${what} as an http(s) URL, got ${JSON.stringify(String(url).slice(0, 100))}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new LicenseError('input', `expected the ${what} as an http(s) URL, got ${parsed.protocol}`);
  return parsed.origin;
}

export async function callLicenseServer(server: string, method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, timeoutMs: number): Promise<Record<string, unknown>> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(new URL(path, server), {
      method, signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    text = await response.text();
  } catch (error) {
    throw new LicenseServerUnavailableError(server, `the license server ${server} does not answer (${(error as Error).name})`, { cause: error });
  }
  if (response.status >= 500) throw new LicenseServerUnavailableError(server, `the license server ${server} cannot serve now (${response.status})`);
  let answer: unknown;
  try {
    if (text.length > MAX_ANSWER_BYTES) throw new RangeError('too long');
    answer = JSON.parse(text);
  } catch {
    throw new LicenseError('input', `the license server ${server} answered ${response.status} without a JSON object`);
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw new LicenseError('input', `the license server ${server} answered ${response.status} without a JSON object`);
  const fields = answer as Record<string, unknown>;
  if (response.ok) return fields;
  const refusal = fields['error'] as { reason?: unknown; message?: unknown } | undefined;
  const reason = typeof refusal?.reason === 'string' && (LICENSE_REASONS as readonly string[]).includes(refusal.reason) ? refusal.reason as LicenseReason : 'input';
  const message = typeof refusal?.message === 'string' ? refusal.message.slice(0, 500) : `HTTP ${response.status}`;
  throw new LicenseError(reason, `the license server ${server} refused: ${message}`);
}
