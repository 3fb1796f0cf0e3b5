// vitest globalSetup of the e2e project: the real pcscd with the vpcd readers (test/support/pcscd-service.ts), after
// checking that the compiled CLI every test spawns is current (test/build-setup.ts built it for this run).
// The helpers' own files, not their index: a globalSetup runs outside the test workers, where vitest cannot be loaded.
import { compiledCliIsCurrent } from '../support/compiled-cli.js';
import { ensurePcscd, stopPcscd } from '../support/pcscd-service.js';

export async function setup(): Promise<void> {
  if (!compiledCliIsCurrent()) {
    throw new Error('expected dist/ to hold the compiled CLI built from the current src/ (test/build-setup.ts builds it), got none or an older one; run `npm run build`');
  }
  await ensurePcscd();
}

export async function teardown(): Promise<void> {
  await stopPcscd();
}
