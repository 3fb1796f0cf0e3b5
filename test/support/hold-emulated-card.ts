// Child process for lock tests: opens an emulated card's state file, says "open", then waits.
import { openEmulatedCard } from '../../src/card-emulator/index.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: hold-emulated-card.ts STATE_FILE');
await openEmulatedCard(path);
process.stdout.write('open\n');
setInterval(() => {}, 1_000);
