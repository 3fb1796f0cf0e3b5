#!/usr/bin/env node
// The example rented program (src/demo/rented-word-count.ts): the compiled one in dist/, else the sources via tsx.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const compiled = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'demo', 'rented-word-count.js');
let main;
if (existsSync(compiled)) {
  ({ main } = await import(pathToFileURL(compiled).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/demo/rented-word-count.ts'));
}
process.exitCode = await main(process.argv.slice(2));
