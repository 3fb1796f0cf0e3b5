// Public surface of the command line: `main` runs `vsc` with the given arguments.
export { main, ROOT } from './main.js';
