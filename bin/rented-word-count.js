#!/usr/bin/env node
// The example rented program (src/demo/rented-word-count.ts): the compiled one in dist/, else the sources (bin/launch.js).
import { launch } from './launch.js';

await launch('demo/rented-word-count');
