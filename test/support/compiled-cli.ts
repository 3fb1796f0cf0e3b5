// The compiled CLI the tests spawn (dist/, from `npm run build` = tsc -p tsconfig.build.json): checks it is current
// with src/ and schema.sql, and builds it when it is not.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Written by every tsc build of tsconfig.build.json, after its output. */
const BUILD_INFO = join(ROOT, 'dist', '.tsbuildinfo');
const INPUTS = [join(ROOT, 'src'), join(ROOT, 'tsconfig.build.json'), join(ROOT, 'tsconfig.json')];

function newestChange(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a removed or renamed file changes its folder
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestChange(join(path, entry)));
  return newest;
}

/** Whether dist/ was built after the last change to src/ and the build's tsconfig files. */
export function compiledCliIsCurrent(): boolean {
  if (!existsSync(BUILD_INFO) || !existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) return false;
  const built = statSync(BUILD_INFO).mtimeMs;
  return INPUTS.every((input) => newestChange(input) <= built);
}

/** Builds dist/ unless it is current; rejects with the compiler's output when the build fails. */
export async function ensureCompiledCli(): Promise<'current' | 'built'> {
  if (compiledCliIsCurrent()) return 'current';
  // Build info without its output (dist/ partly removed) would make the incremental build skip everything.
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) rmSync(BUILD_INFO, { force: true });
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`expected \`npm run build\` (tsc -p tsconfig.build.json) to compile the CLI into dist/, it failed:\n${stdout}${stderr}`, { cause: error }));
    });
  });
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('expected `npm run build` to write dist/cli/main.js, got none; check tsconfig.build.json');
  // An incremental build that found nothing to do leaves its build info untouched: mark the check done.
  const now = new Date();
  utimesSync(BUILD_INFO, now, now);
  return 'built';
}
