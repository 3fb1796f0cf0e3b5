// Signature checks of a long trail spread over worker threads (patent 003 [0060] step [6.2]). Checking a trail is
// one Ed25519 verification per record and little else, so it runs at the machine's verification rate only if every
// core verifies: the main thread parses lines and hashes (two SHA-256 per record, cheap), workers verify. A batch
// travels as two transferred buffers (digests, signatures), not as objects to clone.
//
// The workers run a few lines of node:crypto given as source (`eval`), so the same code runs from the compiled
// package and from the TypeScript sources under test. They keep the event loop alive only while a batch is out.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH } from '../crypto/index.js';

const DIGEST_LENGTH = 32;

/** Runs in each worker: verify a batch against one key (imported once per key), answer the first bad index or -1. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
parentPort.on('message', ({ id, key, digests, signatures, count }) => {
  const hex = Buffer.from(key).toString('hex');
  let object = keys.get(hex);
  if (object === undefined) {
    try { object = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(key)]), format: 'der', type: 'spki' }); } catch { object = null; }
    if (keys.size > 16) keys.clear();
    keys.set(hex, object);
  }
  const d = Buffer.from(digests);
  const s = Buffer.from(signatures);
  let bad = -1;
  for (let i = 0; i < count; i++) {
    let ok = false;
    if (object !== null) {
      try { ok = verify(null, d.subarray(i * 32, i * 32 + 32), object, s.subarray(i * 64, i * 64 + 64)); } catch { ok = false; }
    }
    if (!ok) { bad = i; break; }
  }
  parentPort.postMessage({ id, bad });
});
`;

interface Pending {
  readonly resolve: (bad: number) => void;
  readonly reject: (error: Error) => void;
  readonly worker: PoolWorker;
}

interface PoolWorker {
  readonly thread: Worker;
  inFlight: number;
}

/** A fixed set of verification workers shared by every trail check in the process. */
export class SignatureVerifierPool {
  static #shared: SignatureVerifierPool | undefined;

  readonly size: number;
  #workers: PoolWorker[] = [];
  #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;

  constructor(size = availableParallelism()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`expected at least one verification worker, got ${size}`);
    this.size = size;
  }

  /** The process's pool, one worker per core, started on first use. */
  static shared(): SignatureVerifierPool {
    if (SignatureVerifierPool.#shared === undefined || SignatureVerifierPool.#shared.#closed) SignatureVerifierPool.#shared = new SignatureVerifierPool();
    return SignatureVerifierPool.#shared;
  }

  /**
   * Verifies `count` signatures (64 bytes each, packed) of `count` digests (32 bytes each, packed) against one Ed25519
   * key; resolves the index of the first that fails, or -1. The buffers are transferred: the caller gives them up.
   */
  verify(publicKey: Uint8Array, digests: Uint8Array, signatures: Uint8Array, count: number): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('the signature verifier pool is closed'));
    if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return Promise.resolve(count > 0 ? 0 : -1);
    if (digests.length !== count * DIGEST_LENGTH || signatures.length !== count * ED25519_SIGNATURE_LENGTH) {
      return Promise.reject(new RangeError(`expected ${count} digests and signatures, got ${digests.length} and ${signatures.length} bytes`));
    }
    if (count === 0) return Promise.resolve(-1);
    const worker = this.#leastBusy();
    const id = this.#nextId++;
    const own = (bytes: Uint8Array) => (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice());
    const d = own(digests);
    const s = own(signatures);
    return new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker });
      if (worker.inFlight++ === 0) worker.thread.ref();
      worker.thread.postMessage({ id, key: publicKey.slice(), digests: d.buffer, signatures: s.buffer, count }, [d.buffer as ArrayBuffer, s.buffer as ArrayBuffer]);
    });
  }

  /** Stops the workers; batches still out are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers;
    this.#workers = [];
    for (const pending of this.#pending.values()) pending.reject(new Error('the signature verifier pool was closed'));
    this.#pending.clear();
    await Promise.all(workers.map((worker) => worker.thread.terminate()));
  }

  #leastBusy(): PoolWorker {
    if (this.#workers.length < this.size) {
      const idle = this.#workers.find((worker) => worker.inFlight === 0);
      if (idle !== undefined) return idle;
      return this.#start();
    }
    return this.#workers.reduce((best, worker) => (worker.inFlight < best.inFlight ? worker : best));
  }

  #start(): PoolWorker {
    const thread = new Worker(WORKER_SOURCE, { eval: true });
    const worker: PoolWorker = { thread, inFlight: 0 };
    thread.unref();
    thread.on('message', ({ id, bad }: { id: number; bad: number }) => {
      const pending = this.#pending.get(id);
      if (pending === undefined) return;
      this.#pending.delete(id);
      if (--worker.inFlight === 0) thread.unref();
      pending.resolve(bad);
    });
    const fail = (error: Error) => {
      this.#workers = this.#workers.filter((other) => other !== worker);
      for (const [id, pending] of this.#pending) {
        if (pending.worker !== worker) continue;
        this.#pending.delete(id);
        pending.reject(error);
      }
    };
    thread.on('error', fail);
    thread.on('exit', (code) => fail(new Error(`a signature verification worker exited with code ${code}`)));
    this.#workers.push(worker);
    return worker;
  }
}
