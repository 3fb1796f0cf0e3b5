// Public surface of the demo: the whole story end to end (`vsc demo`).
export { runDemo, type DemoOptions } from './demo.js';
export { main as rentedWordCount, PROGRAM_NAME as RENTED_WORD_COUNT_PROGRAM } from './rented-word-count.js';
