// How the hub calls a licensor's restoring service (Wibu 000 P002 §2.1: the hub "sends each license ... to the
// corresponding Restoring Web Service"; "CM-Box Backup" §2.5 "initiate the Restore requests to many Licensors at same
// time"): one JSON call with a timeout, no redirects, a bounded answer, and the answer told apart from a service that
// could not be reached. Nothing here logs a body or a header: they carry backup items and licensors' API keys.
import { concatBytes } from '../../bytes/index.js';
import { LicenseError } from '../license-error.js';

export const DEFAULT_FORWARD_TIMEOUT_MS = 15_000;
/** Largest answer read from a restoring service (a signed update is at most 16 KiB; alert lists are longer). */
export const MAX_FORWARD_ANSWER_BYTES = 1024 * 1024;
/** Longest text of a licensor's refusal shown on: enough to say why, no room for a page of someone else's HTML. */
const MAX_MESSAGE = 300;

export type HubFetch = typeof globalThis.fetch;

export type ForwardOutcome =
  | { readonly kind: 'answer'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'unreachable'; readonly message: string };

export interface ForwardCall {
  readonly method: 'GET' | 'POST';
  /** The service's base URL as the licensor registered it. */
  readonly base: string;
  /** Below the base: "v1/restores". */
  readonly path: string;
  readonly body?: unknown;
  /** Passed on as it came (the licensor's own API key), never stored. */
  readonly authorization?: string;
  readonly timeoutMs: number;
  readonly fetch: HubFetch;
}

/** `path` below `base`: a base with a path ("https://example.com/licensing") keeps it. */
export function serviceUrl(base: string, path: string): URL {
  const root = new URL(base.endsWith('/') ? base : `${base}/`);
  const url = new URL(path.replace(/^\/+/, ''), root);
  if (url.origin !== root.origin || !url.pathname.startsWith(root.pathname)) throw new LicenseError('input', `expected a path below the service's URL, got ${path.slice(0, 60)}`);
  return url;
}

async function readBounded(response: Response): Promise<string | undefined> {
  const reader = response.body?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_FORWARD_ANSWER_BYTES) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(concatBytes(...chunks));
}

/** Calls the service; a network failure, a timeout, an answer too long or not JSON is 'unreachable'. */
export async function forward(call: ForwardCall): Promise<ForwardOutcome> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  if (call.authorization !== undefined) headers['authorization'] = call.authorization;
  let text: string | undefined;
  let status: number;
  try {
    const response = await call.fetch(serviceUrl(call.base, call.path), {
      method: call.method, headers, redirect: 'error', signal: AbortSignal.timeout(call.timeoutMs),
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    });
    status = response.status;
    text = await readBounded(response);
  } catch (error) {
    const name = (error as Error | null)?.name;
    return { kind: 'unreachable', message: name === 'TimeoutError' ? `no answer within ${call.timeoutMs / 1000} s` : 'cannot be reached' };
  }
  if (text === undefined) return { kind: 'unreachable', message: `answered more than ${MAX_FORWARD_ANSWER_BYTES} bytes` };
  try {
    return { kind: 'answer', status, body: JSON.parse(text) as unknown };
  } catch {
    return { kind: 'unreachable', message: `answered HTTP ${status} without JSON` };
  }
}

/** A licensor's text fit to show on: one line, printable, at most MAX_MESSAGE characters. */
export function shownText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  // eslint-disable-next-line no-control-regex
  const line = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE - 1)}…` : line;
}

/** The {"error": {"reason", "message"}} of a refusal, when the answer has one. */
export function refusalOf(body: unknown): { reason: string; message?: string } | undefined {
  const error = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['error'] : undefined;
  if (typeof error !== 'object' || error === null) return undefined;
  const reason = (error as Record<string, unknown>)['reason'];
  if (typeof reason !== 'string' || !/^[a-z-]{1,40}$/.test(reason)) return undefined;
  const message = shownText((error as Record<string, unknown>)['message']);
  return { reason, ...(message === undefined ? {} : { message }) };
}
