// How the hub reaches a licensor's restoring service (src/license/hub/hub-forward.ts): URLs below the registered base,
// answers told apart from services that fail, refusals and their texts cut to something fit to show.
import { describe, expect, it } from 'vitest';
import { forward, refusalOf, serviceUrl, shownText, type HubFetch } from '../../../src/license/hub/index.js';
import { LicenseError } from '../../../src/license/index.js';
import { thrown } from '../../support/index.js';

const answering = (status: number, text: string, headers: Record<string, string> = {}): HubFetch => async () => new Response(text, { status, headers });
const call = (fetch: HubFetch) => forward({ method: 'GET', base: 'http://licensor.test', path: 'v1/alerts', timeoutMs: 1000, fetch });

describe('service URLs', () => {
  it.each([
    ['http://127.0.0.1:8710', 'v1/restores', 'http://127.0.0.1:8710/v1/restores'],
    ['http://127.0.0.1:8710/', 'v1/restores', 'http://127.0.0.1:8710/v1/restores'],
    ['https://example.com/licensing', 'v1/alerts/7/approve', 'https://example.com/licensing/v1/alerts/7/approve'],
    ['https://example.com/licensing/', '/v1/locks', 'https://example.com/licensing/v1/locks'],
  ])('%s + %s → %s', (base, path, url) => {
    expect(serviceUrl(base, path).href).toBe(url);
  });

  it('refuses a path that would leave the service, and keeps one that looks like another host below it', () => {
    expect(thrown(() => serviceUrl('https://example.com/licensing', '../admin'))).toBeInstanceOf(LicenseError);
    expect(serviceUrl('https://example.com/licensing', '//evil.test/x').href).toBe('https://example.com/licensing/evil.test/x');
  });
});

describe('forwarded answers', () => {
  it('hands on a JSON answer with its status', async () => {
    expect(await call(answering(409, '{"error":{"reason":"replayed","message":"no"}}'))).toEqual({ kind: 'answer', status: 409, body: { error: { reason: 'replayed', message: 'no' } } });
  });

  it.each([
    ['a network failure', (async () => { throw new TypeError('fetch failed'); }) as HubFetch, 'cannot be reached'],
    ['a timeout', (async () => { throw new DOMException('timed out', 'TimeoutError'); }) as HubFetch, 'no answer within 1 s'],
    ['an answer that is not JSON', answering(200, '<html>'), 'answered HTTP 200 without JSON'],
    ['an answer over 1 MiB', answering(200, `"${'x'.repeat(1024 * 1024)}"`), 'answered more than 1048576 bytes'],
  ])('tells %s apart as unreachable', async (_what, fetch, message) => {
    expect(await call(fetch)).toEqual({ kind: 'unreachable', message });
  });

  it('reads a refusal\'s reason and a message fit to show, and nothing from what is no refusal', () => {
    expect(refusalOf({ error: { reason: 'approval', message: 'wait\nfor\tit' } })).toEqual({ reason: 'approval', message: 'wait for it' });
    expect(refusalOf({ error: { reason: 'Not A Reason!' } })).toBeUndefined();
    expect(refusalOf({ status: 'restored' })).toBeUndefined();
    expect(refusalOf('error')).toBeUndefined();
    expect(shownText('x'.repeat(500))).toHaveLength(300);
    expect(shownText(42)).toBeUndefined();
  });
});
