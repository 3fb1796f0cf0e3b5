#!/usr/bin/env node
// Entry point of `npm run bench`: runs every benchmark and writes BENCHMARKS.md.
import { register } from 'tsx/esm/api';

register();
const { runBenchmarks } = await import('../bench/run.ts');
process.exitCode = await runBenchmarks(process.argv.slice(2));
