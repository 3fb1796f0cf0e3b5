// Public surface of the demo: the whole story end to end (`vsc demo`).
export { runDemo, type DemoOptions } from './demo.js';
