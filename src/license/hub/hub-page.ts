// The hub's self-service page (Wibu 000 P002 §2.1 "a single command from the user (single click)"; "CM-Box Backup"
// §2.5 "a single click ... optionally the User can decide that not all licenses of the Backup are restored"): one static
// HTML page and one script, no framework and nothing from elsewhere, served under a Content-Security-Policy of
// default-src 'self'. The files live in src/license/hub/page/ and are read from there (the build compiles only .ts).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** From src/license/hub/ and from dist/license/hub/ alike, three levels up is the repository. */
const PAGE_DIR = new URL('../../../src/license/hub/page/', import.meta.url);

export const PAGE_SCRIPT_PATH = '/hub-page.js';

/** Every answer of the hub carries these: the page loads nothing from elsewhere and is framed nowhere. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
});

export interface HubPage {
  readonly html: string;
  readonly script: string;
}

/** The page's two files, read once. */
export function loadHubPage(): HubPage {
  const read = (name: string): string => readFileSync(fileURLToPath(new URL(name, PAGE_DIR)), 'utf8');
  return Object.freeze({ html: read('hub-page.html'), script: read('hub-page.js') });
}
