// `vsc demo`: the whole story, narrated step by step.
import type { Command } from '../command.js';

export const demoCommand: Command = {
  kind: 'command',
  name: 'demo',
  summary: 'show, step by step, a virtual card inserted into a reader and used',
  details: 'Needs nothing but this package: it uses the in-process reader. Where pcscd with vpcd runs, it shows that path too.',
  options: {},
  // Loaded when the command runs: the demo brings the server, its database and the whole card along.
  run: async () => (await import('../../demo/index.js')).runDemo(),
};
