// `vsc demo`: the whole story, narrated step by step (placeholder until the reader exists).
import type { Command } from '../command.js';
import { runDemo } from '../../demo/index.js';

export const demoCommand: Command = {
  kind: 'command',
  name: 'demo',
  summary: 'show, step by step, a virtual card inserted into a reader and used',
  details: 'Needs nothing but this package: it uses the in-process reader. Where pcscd with vpcd runs, it shows that path too.',
  options: {},
  run: () => runDemo(),
};
