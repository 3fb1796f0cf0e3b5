// Searches a running process's whole memory for byte strings (the tests run as root): every readable mapping that
// /proc/PID/maps lists, read through /proc/PID/mem in chunks that overlap by the longest needle, so a needle that
// straddles two chunks is still found. Used to show a server-held card's seed never reaches the client's process.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const CHUNK = 16 * 1024 * 1024;

export interface MemorySearch {
  /** How many times each needle was found, in the order given. */
  readonly found: readonly number[];
  /** Bytes read, and mappings that could not be read (kernel-only or vanished while reading). */
  readonly bytesRead: number;
  readonly unreadable: number;
}

interface Mapping {
  readonly start: number;
  readonly end: number;
}

/** The readable mappings of `pid`, from /proc/PID/maps. */
function readableMappings(pid: number): Mapping[] {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  const mappings: Mapping[] = [];
  for (const line of maps.split('\n')) {
    const match = /^([0-9a-f]+)-([0-9a-f]+) (r)[-w][-x][ps-]/.exec(line);
    if (match === null || line.endsWith('[vvar]') || line.endsWith('[vsyscall]')) continue;
    mappings.push({ start: Number.parseInt(match[1]!, 16), end: Number.parseInt(match[2]!, 16) });
  }
  return mappings;
}

function count(haystack: Buffer, needle: Buffer, from: number): number {
  let found = 0;
  for (let at = haystack.indexOf(needle, from); at >= 0; at = haystack.indexOf(needle, at + 1)) found++;
  return found;
}

/** Counts each needle in the memory of `pid`. Throws when the process's memory cannot be opened at all (not root). */
export function searchProcessMemory(pid: number, needles: readonly Uint8Array[]): MemorySearch {
  if (needles.length === 0 || needles.some((needle) => needle.length === 0)) throw new Error('expected non-empty needles to search for');
  const wanted = needles.map((needle) => Buffer.from(needle));
  const overlap = Math.max(...wanted.map((needle) => needle.length)) - 1;
  const found = wanted.map(() => 0);
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  let bytesRead = 0;
  let unreadable = 0;
  const buffer = Buffer.alloc(CHUNK + overlap);
  try {
    for (const { start, end } of readableMappings(pid)) {
      let carried = 0; // bytes at the front of `buffer` kept from the previous chunk
      try {
        for (let position = start; position < end; position += CHUNK) {
          const length = Math.min(CHUNK, end - position);
          const got = readSync(fd, buffer, carried, length, position);
          bytesRead += got;
          const window = buffer.subarray(0, carried + got);
          // Only matches that end in the new bytes: those wholly inside the carried part were counted already.
          wanted.forEach((needle, i) => {
            found[i]! += count(window, needle, Math.max(0, carried - needle.length + 1));
          });
          if (got < length) break;
          carried = Math.min(overlap, window.length);
          window.copy(buffer, 0, window.length - carried);
        }
      } catch {
        unreadable++;
      }
    }
  } finally {
    closeSync(fd);
    buffer.fill(0);
  }
  return { found, bytesRead, unreadable };
}
