#!/usr/bin/env node
// Entry point of the `vsc` command: the compiled CLI in dist/, else the TypeScript sources (bin/launch.js).
import { launch } from './launch.js';

await launch('cli/main');
