// `vsc ...args` run in the test's own process through main(), with what it printed captured: for CLI tests that need
// no separate process (no pcscd, no environment of their own). It imports vitest, so it is not in index.ts, which the
// benchmarks load outside vitest: tests import it by its path.
import { vi } from 'vitest';
import { main } from '../../src/cli/index.js';

export interface InProcessRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `vsc ...args` through main(): its exit code and its console output, line by line. */
export async function vscInProcess(...args: string[]): Promise<InProcessRun> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...line: unknown[]) => void out.push(line.map(String).join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...line: unknown[]) => void err.push(line.map(String).join(' ')));
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}
