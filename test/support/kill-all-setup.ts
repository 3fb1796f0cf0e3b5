// vitest setup file of every project: after each file, SIGKILL every `vsc` process it started that still runs
// (test/support/vsc-spawn.ts), so a failed or timed-out test leaves nothing running for the next file.
import { afterAll } from 'vitest';
import { killAllVsc } from './vsc-spawn.js';

afterAll(killAllVsc);
