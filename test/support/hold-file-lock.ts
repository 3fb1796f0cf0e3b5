// Child process for lock tests: takes the file lock at argv[2], says "locked", then waits (or dies with it).
import { acquireFileLock } from '../../src/files/index.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: hold-file-lock.ts LOCK_FILE');
await acquireFileLock(path);
process.stdout.write('locked\n');
setInterval(() => {}, 1_000);
