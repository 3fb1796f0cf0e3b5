// Shared by the executables in bin/: load a program's `main` from the compiled package in dist/ (`npm run build`,
// which `npm ci` runs) when it is there, else from the TypeScript sources through tsx's loader (a checkout that was
// never built), run it with the command line, and exit with its code.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout } from 'node:timers';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `module` is the path below src/ and dist/ without its extension, e.g. "cli/main". */
export async function launch(module) {
  const compiled = join(ROOT, 'dist', `${module}.js`);
  let main;
  if (existsSync(compiled)) {
    ({ main } = await import(pathToFileURL(compiled).href));
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    ({ main } = await import(pathToFileURL(join(ROOT, 'src', `${module}.ts`)).href));
  }
  process.exitCode = await main(process.argv.slice(2));
  // A finished command ends, its output written: every long-running command awaits its own end (a
  // signal, its card removed), so whatever a library left open (a socket in its close handshake, a
  // timer) must not keep it running. Unref'd: a process whose loop drains exits at once, as always.
  setTimeout(() => {
    if (process.argv.includes('--debug')) console.error(`vsc: still open after the command finished: ${process.getActiveResourcesInfo().join(', ')}`);
    process.exit();
  }, FINISHED_GRACE_MS).unref();
}

/** How long a finished command may take to close what it still has open. */
const FINISHED_GRACE_MS = 2_000;
