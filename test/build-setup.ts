// vitest globalSetup of every project: the tests spawn the compiled CLI (bin/vsc.js runs dist/), so make sure it is
// built from the current sources before the first test file runs (a no-op when `npm test` just built it).
import { ensureCompiledCli } from './support/compiled-cli.js';

export default async function setup(): Promise<void> {
  const outcome = await ensureCompiledCli();
  if (outcome === 'built') console.log('tests: built the compiled CLI into dist/ (npm run build)');
}
