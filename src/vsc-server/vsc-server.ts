// The VSC server: a WebSocket endpoint where every connection is one protected-channel session
// carrying one operation (hello → challenge → proof → result). It authenticates the owner and the
// implementation before it acts, and acts only through the card store's check-and-set transitions.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { acceptSession, CHANNEL_WS_MAX_PAYLOAD, encodeServerPublicKey, type ChannelSession } from '../channel/index.js';
import { wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed, sha256 } from '../crypto/index.js';
import { checkKdfParams, newKdfParams, type KdfParams } from '../vsc-client/key-derivation.js';
import { authVerifier, keyfileProof, keyfileSecretFor, masterProof, newChallengeNonce, verifyProof } from '../vsc-protocol/index.js';
import { Fields, OPERATIONS, ProtocolError, SERIAL_PATTERN, encodeMessage, type Operation, type Refusal, type WireValue } from '../vsc-protocol/messages.js';
import { crashPoint } from '../fault-injection/crash-point.js';
import { CardRefusal, CardStore, type HolderProof } from './card-store.js';
import type { VscDatabase } from './database.js';
import type { ServerKeys } from './server-data.js';
import { NO_OBSERVER, combineObservers, type VscServerObserver } from './server-observer.js';

/** Which implementation proofs a deployment demands ([0041], [0048]): one of them, or both. */
export type ImplementationProofs = 'master' | 'keyfile' | 'both';

/** [0042]: the challenge must be answered within 30 seconds. */
export const CHALLENGE_LIFETIME_MS = 30_000;
/** Protected information is small (keys, PIV objects): anything bigger is refused. */
export const MAX_SEALED_BYTES = 48 * 1024;

export interface VscServerOptions {
  readonly keys: ServerKeys;
  readonly database: VscDatabase;
  readonly host?: string;
  readonly port?: number;
  readonly implementationProofs?: ImplementationProofs;
  readonly counterWindow?: bigint;
  readonly now?: () => number;
  /** Told of every session and finished operation (logs, metrics); it never sees a secret. */
  readonly observer?: VscServerObserver;
}

export interface RunningVscServer {
  readonly url: string;
  readonly port: number;
  readonly publicKey: string;
  close(): Promise<void>;
}

class Refused extends Error {
  constructor(
    readonly reason: Refusal,
    message: string,
  ) {
    super(message);
  }
}

export async function startVscServer(options: VscServerOptions): Promise<RunningVscServer> {
  const { keys, host = '127.0.0.1', port = 0, implementationProofs = 'master', now = Date.now } = options;
  // Guarded: an observer that throws must not disturb serving.
  const observer = combineObservers(options.observer ?? NO_OBSERVER);
  // Clients check their keyfile's signature against this key, received over the pinned channel.
  const keyfileKey = ed25519KeyFromSeed(keys.signingSeed).publicKey;
  const store = new CardStore(options.database, {
    now,
    ...(options.counterWindow === undefined ? {} : { counterWindow: options.counterWindow }),
    beforeCommit: (operation) => crashPoint(`server.${operation}.in-transaction`),
  });
  const http: Server = createServer((_, response) => response.writeHead(426).end('WebSocket only\n'));
  const wss = new WebSocketServer({ server: http, maxPayload: CHANNEL_WS_MAX_PAYLOAD });
  const sockets = new Set<WebSocket>();

  wss.on('connection', (socket, request) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void serveConnection(socket, request.socket.remoteAddress ?? 'unknown');
  });

  async function serveConnection(socket: WebSocket, remoteAddress: string): Promise<void> {
    const startedAt = performance.now();
    observer.sessionOpened();
    let session: ChannelSession;
    try {
      session = await acceptSession(socket, { publicKey: keys.channelPublicKey, privateKey: keys.channelPrivateKey });
    } catch {
      observer.sessionClosed();
      return; // the channel already closed the socket; an unauthenticated peer gets nothing
    }
    let operation = 'unknown';
    let serial = '-';
    let outcome: 'ok' | Refusal = 'ok';
    let failure: unknown;
    try {
      const hello = Fields.parse(await session.receive(), 'hello');
      if (hello.string('type') !== 'hello') throw new ProtocolError('expected a hello first');
      operation = hello.oneOf('operation', OPERATIONS);
      serial = hello.string('serial', SERIAL_PATTERN);
      hello.done();
      const result = await runOperation(session, serial, operation as Operation);
      await session.send(encodeMessage({ type: 'result', ...result }));
    } catch (error) {
      const [reason, message] = describeFailure(error);
      outcome = reason;
      if (reason === 'internal') failure = error;
      await session.send(encodeMessage({ type: 'refused', reason, message })).catch(() => undefined);
    } finally {
      session.close();
      // '-' cannot match SERIAL_PATTERN: it means no valid hello named a serial.
      observer.operationFinished({
        operation: operation as Operation | 'unknown', serial: serial === '-' ? undefined : serial, outcome, durationMs: performance.now() - startedAt, remoteAddress,
        ...(failure === undefined ? {} : { error: failure }),
      });
      observer.sessionClosed();
    }
  }

  /**
   * Challenge, proof, then the operation: one transaction in the card store that locks the serial
   * ([0081]), authenticates the owner and checks and sets the state. Nothing is locked before the
   * client has proved it is a genuine implementation, so a peer that merely opens a session blocks
   * nobody.
   */
  async function runOperation(session: ChannelSession, serial: string, operation: Operation): Promise<Record<string, WireValue>> {
    const kdf = operation === 'enroll' ? newKdfParams() : { algorithm: 'argon2id' as const, ...(await store.kdfParameters(serial)) };
    const ri1 = newChallengeNonce();
    const issuedAt = now();
    // Enrollment seals under the card id, which the server fixed when the card was created.
    const cardId = operation === 'enroll' ? await store.cardId(serial) : undefined;
    await session.send(encodeMessage({ type: 'challenge', salt: kdf.salt, memoryKiB: kdf.memoryKiB, iterations: kdf.iterations, parallelism: kdf.parallelism, ri1, cardId, keyfileKey }));

    const proof = Fields.parse(await session.receive(CHALLENGE_LIFETIME_MS), 'proof');
    if (proof.string('type') !== 'proof') throw new ProtocolError('expected the proof');
    if (now() - issuedAt > CHALLENGE_LIFETIME_MS) throw new Refused('implementation', 'the challenge was not answered within 30 seconds');
    checkImplementation(proof, serial, ri1);
    const authKey = proof.bytes('authKey', 32, 32);
    const owner = authVerifier(authKey);
    wipe(authKey);
    crashPoint(`server.${operation}.proof`);
    const result = await perform(proof, serial, operation, owner, kdf);
    crashPoint(`server.${operation}.committed`);
    return result;
  }

  async function perform(proof: Fields, serial: string, operation: Operation, owner: Uint8Array, kdf: KdfParams): Promise<Record<string, WireValue>> {
    switch (operation) {
      case 'enroll': {
        const token = proof.string('token', /^[A-Za-z0-9_-]{16,128}$/);
        const sealed = proof.bytes('sealed', 1, MAX_SEALED_BYTES);
        const publicKey = proof.bytes('publicKey', 32, 32);
        proof.done();
        checkKdfParams(kdf);
        await store.enroll(serial, token, { kdfSalt: kdf.salt, kdfMemoryKiB: kdf.memoryKiB, kdfIterations: kdf.iterations, kdfParallelism: kdf.parallelism, authVerifier: owner, sealed, publicKey });
        return {};
      }
      case 'insert': {
        const muk = proof.bytes('muk', 32, 32);
        const holderHash = proof.bytes('holderHash', 32, 32);
        proof.done();
        const grant = await store.insert(serial, owner, { muk, holderHash });
        return { cardId: grant.cardId, sealed: grant.sealed, sealedVersion: grant.sealedVersion, windowStart: grant.counterWindow[0], windowEnd: grant.counterWindow[1] };
      }
      case 'extend': {
        const holder = holderProof(proof);
        proof.done();
        const [windowStart, windowEnd] = await store.extend(serial, owner, holder);
        return { windowStart, windowEnd };
      }
      case 'remove': {
        const holder = holderProof(proof);
        const sealed = proof.bytes('sealed', 1, MAX_SEALED_BYTES);
        const sealedVersion = proof.bigint('sealedVersion');
        const nextCounter = proof.bigint('nextCounter');
        proof.done();
        await store.remove(serial, owner, holder, { sealed, sealedVersion, nextCounter });
        return {};
      }
      case 'recover': {
        const muk = proof.bytes('muk', 32, 32);
        proof.done();
        await store.recover(serial, owner, muk);
        return {};
      }
      case 'destroy': {
        proof.done();
        await store.destroy(serial, { owner });
        return {};
      }
    }
  }

  /** Master-key and/or keyfile proofs over (ri1, ri2, serial), as the deployment demands. */
  function checkImplementation(proof: Fields, serial: string, ri1: Uint8Array): void {
    const ri2 = proof.bytes('ri2', 32, 32);
    const master = proof.optionalBytes('masterProof', 32, 32);
    const installId = proof.has('installId') ? proof.string('installId', /^[\x21-\x7e]{1,128}$/) : undefined;
    const keyfile = proof.optionalBytes('keyfileProof', 32, 32);
    const needMaster = implementationProofs !== 'keyfile';
    const needKeyfile = implementationProofs !== 'master';
    if (needMaster && (master === undefined || !verifyProof(masterProof(keys.masterKey, ri1, ri2, serial), master))) {
      throw new Refused('implementation', 'this client could not prove it is a genuine implementation (master key)');
    }
    if (needKeyfile) {
      if (installId === undefined || keyfile === undefined) throw new Refused('implementation', 'this deployment requires a keyfile; install one with --keyfile');
      const as1 = keyfileSecretFor(keys.keyfileSecret, installId);
      const expected = keyfileProof(as1, ri1, ri2, serial);
      wipe(as1);
      if (!verifyProof(expected, keyfile)) throw new Refused('implementation', 'this client could not prove it is a genuine implementation (keyfile)');
    }
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  const address = http.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `ws://${shownHost}:${address.port}`,
    port: address.port,
    publicKey: encodeServerPublicKey(keys.channelPublicKey),
    async close() {
      for (const socket of sockets) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** The holder's proof for extend and remove: its MUK, and the per-insert secret whose hash insert stored. */
function holderProof(proof: Fields): HolderProof {
  const muk = proof.bytes('muk', 32, 32);
  const holderSecret = proof.bytes('holderSecret', 32, 32);
  const holderHash = sha256(holderSecret);
  wipe(holderSecret);
  return { muk, holderHash };
}

/** The refusal sent to the client: never a stack, never a secret. */
function describeFailure(error: unknown): [Refusal, string] {
  if (error instanceof CardRefusal) return [error.reason, error.message];
  if (error instanceof Refused) return [error.reason, error.message];
  if (error instanceof ProtocolError) return ['protocol', error.message];
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('kdf.')) return ['protocol', error.message];
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('channel.')) return ['protocol', 'the session ended'];
  return ['internal', 'the server could not complete the operation'];
}
