// The VSC server as it was before issue 18, for before/after figures in the same run: a detached git
// worktree of BASELINE_COMMIT, built with this checkout's node_modules, whose bin/vsc.js the server
// benchmarks start (server-process.ts `root`). The main checkout's branches and files are untouched.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './server-process.js';

/** The last commit before issue 18 (group commit, kept connections, prepared statements). */
export const BASELINE_COMMIT = 'ee281e7';

export interface Baseline {
  readonly commit: string;
  /** Repository root of the worktree: pass it as `root` to runVsc and startServerProcess. */
  readonly root: string;
  readonly buildSeconds: number;
  /** `git worktree remove --force` and the temp directory. */
  remove(): Promise<void>;
}

function run(file: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) return resolve();
      const output = `${stdout}${stderr}`.trim().split('\n').slice(-3).join(' / ');
      reject(new Error(`${file === process.execPath ? 'node' : file} ${args.join(' ')} failed (${String(error.code ?? error.signal)}): ${output}`, { cause: error }));
    });
  });
}

/**
 * Checks out `commit` into a worktree of its own and compiles it (tsc -p tsconfig.build.json, as
 * `npm run build` does). Throws with the reason when it cannot; nothing is left behind then.
 */
export async function prepareBaseline(commit: string = BASELINE_COMMIT): Promise<Baseline> {
  if (!/^[0-9a-f]{7,40}$/.test(commit)) throw new Error(`expected a commit as 7 to 40 hex digits, got ${JSON.stringify(commit)}`);
  const dir = mkdtempSync(join(tmpdir(), 'vsc-baseline-'));
  const root = join(dir, 'tree');
  let added = false;
  const remove = async (): Promise<void> => {
    try {
      if (added) await run('git', ['worktree', 'remove', '--force', root], REPO_ROOT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const started = performance.now();
    await run('git', ['worktree', 'add', '--detach', root, commit], REPO_ROOT);
    added = true;
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
    await run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], root);
    return { commit, root, buildSeconds: (performance.now() - started) / 1000, remove };
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
}
