// Crypto floor of the VSC server (issue 18): the least CPU the server's side of one insert + remove
// cycle needs for its cryptography (two Noise NK responder sessions, Noise spec rev. 34 sections 5 and
// 7.4, and the protocol's proofs) and one prepared SQL UPDATE per operation, on one core. It calls
// node:crypto itself with keys held as KeyObjects: the bound beneath any facade the server uses.
import { createCipheriv, createDecipheriv, createHmac, hash, createPrivateKey, createPublicKey, diffieHellman, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { encodeChallenge, encodeHello, encodeProof, encodeResult, newKdfParams } from '../src/vsc-protocol/index.js';

/** What one session of each operation costs the server, counted from src/channel/noise-nk.ts and src/vsc-server. */
export const PER_SESSION = Object.freeze({
  /** The responder's ephemeral key ("e"): one scalar multiplication. */
  keyGenerations: 1,
  /** The client's ephemeral key arrives as 32 bytes and is imported once. */
  peerImports: 1,
  /** DH(s, re) for "es" and DH(e, re) for "ee". */
  dh: 2,
  /**
   * MixHash of re, of message 1's tag, of e and of message 2's tag; the hash of the protocol name,
   * the prologue and the static key is the same for every session and computed once.
   */
  sha256: 4,
  /** MixKey("es"), MixKey("ee") and Split(): three HKDFs with two outputs, 3 HMAC-SHA256 each. */
  hmac: 9,
  /** The two handshake payloads (empty: a tag each) and hello, challenge, proof, result. */
  aead: 6,
});
/** Per operation beyond the channel: the master-key proof (HMAC) and the holder secret's hash; an insert also hashes the owner's auth key (verifier) and the machine's MUK (its failure bucket). */
const PROTOCOL_HASHES = Object.freeze({ insert: { sha256: 3, hmac: 1 }, remove: { sha256: 1, hmac: 1 } });
/** Operations of one group commit in the SQL part: the commit's fsync is wall time shared by the group, not CPU. */
const SQL_GROUP = 16;
/** Wall time of the loop that runs the whole cycle (issue 18 asks for at least 2 s). */
export const FLOOR_LOOP_MS = 2_000;
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const TAG = 16;

export type PeerImport = 'jwk' | 'der';

export interface CryptoFloor {
  /** CPU ms per cycle of the whole mix run in one loop: the floor. */
  readonly cycleMs: number;
  /** CPU ms per cycle of each part run alone. */
  readonly parts: { readonly x25519Ms: number; readonly aeadMs: number; readonly hashMs: number; readonly sqlMs: number };
  /** CPU µs of one import of a peer's 32-byte public key, both ways; `peerImport` is the cheaper, used above. */
  readonly importUs: Readonly<Record<PeerImport, number>>;
  readonly peerImport: PeerImport;
  /** Plaintext bytes of hello, challenge, proof and result, encoded by src/vsc-protocol. */
  readonly messageBytes: { readonly insert: readonly number[]; readonly remove: readonly number[] };
  readonly sha256PerCycle: number;
  readonly hmacPerCycle: number;
  readonly aeadPerCycle: number;
  readonly sqlGroup: number;
  readonly seconds: number;
}

type Operation = 'insert' | 'remove';

/** One ciphertext per message the server decrypts, and the plaintext of each it encrypts. */
interface SessionFixture {
  readonly operation: Operation;
  readonly handshakeTag: Buffer;
  readonly hello: Buffer;
  readonly proof: Buffer;
  readonly challenge: Buffer;
  readonly result: Buffer;
}

const seal = (key: Buffer, nonce: Buffer, ad: Buffer, plaintext: Buffer): Buffer => {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
};

const open = (key: Buffer, nonce: Buffer, ad: Buffer, sealed: Buffer): Buffer => {
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  decipher.setAAD(ad, { plaintextLength: sealed.length - TAG });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const out = decipher.update(sealed.subarray(0, sealed.length - TAG));
  decipher.final();
  return out;
};

const importers: Readonly<Record<PeerImport, (raw: Buffer) => KeyObject>> = {
  jwk: (raw) => createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' }),
  der: (raw) => createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: 'der', type: 'spki' }),
};

/**
 * A fresh X25519 key as a KeyObject and its public key's bytes: 32 random bytes imported as JWK (OpenSSL
 * derives the public key), the public key exported as JWK. generateKeyPairSync is not used: on Node 20
 * exporting the public key of a generated pair can deadlock (src/crypto/x25519.ts), and it did here.
 */
function generateKey(): { key: KeyObject; publicKey: Buffer } {
  const d = randomFillSync(Buffer.alloc(32));
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: 'A'.repeat(43) }, format: 'jwk' });
  d.fill(0);
  return { key, publicKey: Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url') };
}

/**
 * The messages of one cycle as the protocol encodes them, with the bench cards' sealed size: the client's
 * sealed under `key` (zero nonce; the handshake tag with `key` as its associated data, standing in for h).
 */
function sessionFixtures(sealedBytes: number, key: Buffer): SessionFixture[] {
  const r = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
  const kdf = newKdfParams();
  const sealed = r(sealedBytes);
  const challenge = encodeChallenge('insert', { salt: kdf.salt, memoryKiB: kdf.memoryKiB, iterations: kdf.iterations, parallelism: kdf.parallelism, ri1: r(32), keyfileKey: r(32) });
  const plain = {
    insert: [encodeHello({ operation: 'insert', serial: 'bench-0000' }), challenge, encodeProof('insert', { authKey: r(32), ri2: r(32), masterProof: r(32), muk: r(32), holderSecret: r(32) }), encodeResult('insert', { cardId: r(16), sealed, sealedVersion: 1n, windowStart: 0n, windowEnd: 1000n })],
    remove: [encodeHello({ operation: 'remove', serial: 'bench-0000' }), challenge, encodeProof('remove', { ri2: r(32), masterProof: r(32), muk: r(32), holderSecret: r(32), sealed, sealedVersion: 1n, nextCounter: 5n }), encodeResult('remove', {})],
  };
  const nonce = Buffer.alloc(12);
  const empty = Buffer.alloc(0);
  return (['insert', 'remove'] as const).map((operation) => {
    const [hello, challengeBytes, proof, result] = plain[operation].map((bytes) => Buffer.from(bytes)) as [Buffer, Buffer, Buffer, Buffer];
    return { operation, handshakeTag: seal(key, nonce, key, empty), hello: seal(key, nonce, empty, hello), proof: seal(key, nonce, empty, proof), challenge: challengeBytes, result };
  });
}

/** Everything a responder session needs that is not per session. */
interface Floor {
  readonly staticKey: KeyObject;
  readonly peers: readonly Buffer[];
  readonly sessions: readonly SessionFixture[];
  readonly key: Buffer;
  readonly masterKey: Buffer;
  readonly update: Record<Operation, SQLite.Statement>;
  readonly db: SQLite.Database;
  importPeer: (raw: Buffer) => KeyObject;
  peer: number;
  ops: number;
}

// One-shot hashing of the concatenation: cheaper than a Hash object for inputs this short.
const sha = (...parts: Buffer[]): Buffer => hash('sha256', parts.length === 1 ? parts[0]! : Buffer.concat(parts), 'buffer');
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const state = createHmac('sha256', key);
  for (const part of parts) state.update(part);
  return state.digest();
};
const ONE = Buffer.of(1);
const TWO = Buffer.of(2);
const hkdf = (ck: Buffer, ikm: Buffer): [Buffer, Buffer] => {
  const temp = hmac(ck, ikm);
  const first = hmac(temp, ONE);
  return [first, hmac(temp, first, TWO)];
};

function x25519Part(f: Floor): [Buffer, Buffer, Buffer] {
  const re = f.importPeer(f.peers[f.peer++ % f.peers.length]!);
  const es = diffieHellman({ privateKey: f.staticKey, publicKey: re });
  const e = generateKey();
  return [es, diffieHellman({ privateKey: e.key, publicKey: re }), e.publicKey];
}

function hashPart(f: Floor, s: SessionFixture, es: Buffer, ee: Buffer, e: Buffer): void {
  let h = sha(f.key, f.peers[0]!);
  let [ck] = hkdf(f.key, es);
  h = sha(h, s.handshakeTag);
  h = sha(h, e);
  [ck] = hkdf(ck, ee);
  h = sha(h, s.handshakeTag);
  hkdf(ck, Buffer.alloc(0));
  const counts = PROTOCOL_HASHES[s.operation];
  hmac(f.masterKey, h, s.hello);
  for (let i = 0; i < counts.sha256; i++) sha(f.masterKey);
}

function aeadPart(f: Floor, s: SessionFixture): void {
  const nonce = Buffer.alloc(12);
  const empty = Buffer.alloc(0);
  open(f.key, nonce, f.key, s.handshakeTag);
  seal(f.key, nonce, f.key, empty);
  open(f.key, nonce, empty, s.hello);
  seal(f.key, nonce, empty, s.challenge);
  open(f.key, nonce, empty, s.proof);
  seal(f.key, nonce, empty, s.result);
}

function sqlPart(f: Floor, s: SessionFixture): void {
  if (f.ops % SQL_GROUP === 0) f.db.exec('BEGIN');
  const serial = `bench-${String(f.ops % 200).padStart(4, '0')}`;
  if (s.operation === 'insert') f.update.insert.run(f.masterKey, Date.now(), serial);
  else f.update.remove.run(s.proof, Date.now(), serial);
  f.ops++;
  if (f.ops % SQL_GROUP === 0) f.db.exec('COMMIT');
}

/** CPU ms per cycle of `cycle` run back to back for at least `ms` of wall time. */
function cpuPerCycle(ms: number, cycle: () => void): number {
  for (let i = 0; i < 100; i++) cycle();
  const before = process.cpuUsage();
  const start = performance.now();
  let cycles = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 20; i++) cycle();
    cycles += 20;
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / cycles;
}

/**
 * Measures the floor: each part alone for `partMs`, then the whole cycle in one loop for `wholeMs`. `sealedBytes` is the size of the bench cards' sealed information, which the insert's result
 * and the remove's proof carry.
 */
export function measureCryptoFloor(sealedBytes: number, wholeMs = FLOOR_LOOP_MS, partMs = 500): CryptoFloor {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'vsc-crypto-floor-'));
  const db = new SQLite(join(dir, 'floor.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    db.exec('CREATE TABLE cards (serial TEXT PRIMARY KEY, state TEXT NOT NULL, holder_hash BLOB, sealed BLOB, sealed_version INTEGER NOT NULL, updated_at INTEGER NOT NULL)');
    const insertRow = db.prepare("INSERT INTO cards VALUES (?, 'idle', NULL, ?, 1, 0)");
    db.transaction(() => {
      for (let i = 0; i < 200; i++) insertRow.run(`bench-${String(i).padStart(4, '0')}`, randomBytes(sealedBytes));
    })();
    const key = randomBytes(32);
    const f: Floor = {
      staticKey: generateKey().key,
      peers: Array.from({ length: 64 }, () => generateKey().publicKey),
      sessions: sessionFixtures(sealedBytes, key),
      key,
      masterKey: randomBytes(32),
      db,
      update: {
        insert: db.prepare("UPDATE cards SET state = 'inserted', holder_hash = ?, updated_at = ? WHERE serial = ?"),
        remove: db.prepare("UPDATE cards SET state = 'idle', holder_hash = NULL, sealed = ?, sealed_version = sealed_version + 1, updated_at = ? WHERE serial = ?"),
      },
      importPeer: importers.jwk,
      peer: 0,
      ops: 0,
    };
    const importUs = {
      jwk: cpuPerCycle(partMs / 2, () => importers.jwk(f.peers[f.peer++ % f.peers.length]!)) * 1000,
      der: cpuPerCycle(partMs / 2, () => importers.der(f.peers[f.peer++ % f.peers.length]!)) * 1000,
    };
    const peerImport: PeerImport = importUs.der < importUs.jwk ? 'der' : 'jwk';
    f.importPeer = importers[peerImport];
    const [insert, remove] = f.sessions as [SessionFixture, SessionFixture];
    const dummy = randomBytes(32);
    const parts = {
      x25519Ms: cpuPerCycle(partMs, () => (x25519Part(f), x25519Part(f))),
      aeadMs: cpuPerCycle(partMs, () => (aeadPart(f, insert), aeadPart(f, remove))),
      hashMs: cpuPerCycle(partMs, () => (hashPart(f, insert, dummy, dummy, dummy), hashPart(f, remove, dummy, dummy, dummy))),
      sqlMs: cpuPerCycle(partMs, () => (sqlPart(f, insert), sqlPart(f, remove))),
    };
    const session = (s: SessionFixture): void => {
      const [es, ee, e] = x25519Part(f);
      hashPart(f, s, es, ee, e);
      aeadPart(f, s);
      sqlPart(f, s);
    };
    const cycleMs = cpuPerCycle(wholeMs, () => (session(insert), session(remove)));
    if (db.inTransaction) db.exec('COMMIT');
    const messageBytes = (s: SessionFixture): number[] => [s.hello.length - TAG, s.challenge.length, s.proof.length - TAG, s.result.length];
    return {
      cycleMs, parts, importUs, peerImport, sqlGroup: SQL_GROUP,
      messageBytes: { insert: messageBytes(insert), remove: messageBytes(remove) },
      sha256PerCycle: 2 * PER_SESSION.sha256 + PROTOCOL_HASHES.insert.sha256 + PROTOCOL_HASHES.remove.sha256,
      hmacPerCycle: 2 * PER_SESSION.hmac + PROTOCOL_HASHES.insert.hmac + PROTOCOL_HASHES.remove.hmac,
      aeadPerCycle: 2 * PER_SESSION.aead,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
