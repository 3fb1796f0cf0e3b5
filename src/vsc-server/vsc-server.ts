// The VSC server's session side: a WebSocket endpoint whose connections carry protected-channel
// sessions one after another, each session one operation (hello → challenge → proof → result, [0095])
// with its own Noise NK handshake. It authenticates the
// implementation and the owner before it acts; operation-handlers.ts acts through the card store.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { acceptSession, CHANNEL_WS_MAX_PAYLOAD, ChannelSocket, CLOSE_TRY_AGAIN_LATER, encodeServerPublicKey, type ChannelSession } from '../channel/index.js';
import { utf8, wipe } from '../bytes/index.js';
import { ed25519KeyFromSeed, hmacSha256 } from '../crypto/index.js';
import { crashPoint } from '../fault-injection/index.js';
import {
  OperationRefused, ProtocolError, SIGN_OPERATION, authVerifier, decodeHello, decodeProof, decodeSignProof, encodeChallenge, encodeRefusal,
  encodeResult, encodeSignChallenge, encodeSignResult, newChallengeNonce, newKdfParams, type Challenge, type KdfParams, type Operation, type ProofBase, type Refusal,
  type SessionOperation,
} from '../vsc-protocol/index.js';
import { CardStore } from './card-store.js';
import { checkImplementation } from './implementation-check.js';
import { handleOperation, handleSign } from './operation-handlers.js';
import { serverAttester } from './server-attestation.js';
import { heldSeedSealer } from './server-held-seed.js';
import { startEventRetention } from './event-retention.js';
import { PeerGuard } from './peer-guard.js';
import { combineObservers } from './server-observer.js';
import { resolveServerOptions, type VscServerOptions } from './server-options.js';
import { guardConnections, preAuthHttpTimeouts, refuseOperation } from './server-bounds.js';

/** [0042]: the challenge must be answered within 30 seconds. */
export const CHALLENGE_LIFETIME_MS = 30_000;

export interface RunningVscServer {
  readonly url: string;
  readonly port: number;
  readonly publicKey: string;
  close(): Promise<void>;
}

export async function startVscServer(options: VscServerOptions): Promise<RunningVscServer> {
  const settled = resolveServerOptions(options);
  const { keys, database, host, port, implementationProofs, counterWindow, now } = settled;
  // Guarded: an observer that throws must not disturb serving.
  const observer = combineObservers(settled.observer);
  // Clients check their keyfile's signature against this key, received over the pinned channel.
  const keyfileKey = ed25519KeyFromSeed(keys.signingSeed).publicKey;
  // Server-held cards (patent 003 [0096]): their seeds sealed to this server's keys, their insert attested.
  const attester = settled.attestationSeed === undefined ? undefined : serverAttester(settled.attestationSeed, keys.channelPublicKey);
  const store = new CardStore(database, {
    now, counterWindow, saltSecret: unknownSerialSaltSecret(keys.channelPrivateKey), beforeCommit: (operation) => crashPoint(`server.${operation}.in-transaction`),
    beforeGroupCommit: (size) => {
      if (size >= 2) crashPoint('commit-group.committing');
    },
    groupCommitted: (size) => observer.groupCommitted?.(size),
    heldSeeds: heldSeedSealer(keys), ...(attester === undefined ? {} : { attester }),
  });
  const { limits } = settled;
  const http: Server = createServer(preAuthHttpTimeouts(limits), (_, response) => response.writeHead(426).end('WebSocket only\n'));
  const guard = new PeerGuard(limits, { refused: (refusal) => observer.peerRefused?.(refusal), connectionsChanged: (open) => observer.connectionsChanged?.(open) });
  observer.limitsConfigured?.(limits);
  // Caps at TCP accept, session rates at the upgrade (HTTP 429): both before any crypto.
  const verifyClient = guardConnections(http, guard, limits);
  const wss = new WebSocketServer({ server: http, maxPayload: CHANNEL_WS_MAX_PAYLOAD, verifyClient });
  const sockets = new Set<WebSocket>();

  wss.on('connection', (socket, request) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void serveConnection(new ChannelSocket(socket), request.socket.remoteAddress ?? 'unknown');
  });

  /**
   * The sessions of one connection, one after another: the first was admitted at the upgrade; each
   * later one counts against the session rates at its first message, before any crypto, and is cut
   * with close code 1013 when over them. Only an operation done keeps the connection; a refusal
   * closes it. A connection idle between sessions is closed after idleTimeoutMs.
   */
  async function serveConnection(channel: ChannelSocket, remoteAddress: string): Promise<void> {
    if (!(await serveSession(channel, remoteAddress))) return;
    while (await channel.nextSession(limits.idleTimeoutMs)) {
      const refusal = await guard.admitSessionRate(remoteAddress).catch(() => ({ retryInS: 1 }));
      if (refusal !== undefined) {
        channel.close(CLOSE_TRY_AGAIN_LATER, `too many new sessions; retry in ${refusal.retryInS} s`);
        return;
      }
      if (!(await serveSession(channel, remoteAddress))) return;
    }
  }

  /** One session: handshake, hello, the operation, its last message. Returns whether the connection may carry another. */
  async function serveSession(channel: ChannelSocket, remoteAddress: string): Promise<boolean> {
    const startedAt = performance.now();
    observer.sessionOpened();
    let session: ChannelSession;
    // Handshake and hello within preAuthTimeoutMs; the proof then has CHALLENGE_LIFETIME_MS.
    const preAuthDeadline = startedAt + limits.preAuthTimeoutMs;
    const channelOptions = { timeoutMs: limits.preAuthTimeoutMs, maxQueuedMessages: limits.maxQueuedMessages, maxQueuedBytes: limits.maxQueuedBytes };
    try {
      session = await acceptSession(channel, { publicKey: keys.channelPublicKey, privateKey: keys.channelPrivateKey }, channelOptions);
    } catch {
      observer.sessionClosed();
      return false; // the channel already closed the socket; an unauthenticated peer gets nothing
    }
    let operation: SessionOperation | 'unknown' = 'unknown';
    let serial: string | undefined;
    let outcome: 'ok' | Refusal = 'ok';
    let failure: unknown;
    let release = (): void => undefined;
    let kept = false;
    const reached = { cardStore: false };
    try {
      const hello = decodeHello(await session.receive(Math.max(1, preAuthDeadline - performance.now())));
      operation = hello.operation;
      serial = hello.serial;
      const admission = await guard.admitOperation(remoteAddress);
      if (!admission.admitted) throw refuseOperation(admission.refusal);
      release = admission.release;
      kept = await session.finish(hello.operation === SIGN_OPERATION ? await runSign(session, hello.serial, reached) : await runOperation(session, hello.serial, hello.operation, reached));
    } catch (error) {
      // Counted before the session's slot is given back (finally), so the peer's budget never has a gap.
      if (reached.cardStore && isFailedProof(error)) await guard.recordFailedProof(remoteAddress).catch(() => undefined);
      const [reason, message] = describeFailure(error);
      outcome = reason;
      if (reason === 'internal') failure = error;
      // A refusal is the session's last message and ends the connection too: only an operation done
      // keeps it, so a peer that is refused (a wrong password, a broken message) opens a new connection
      // for its next try, under the connection caps and rates.
      await session.send(encodeRefusal({ reason, message })).catch(() => undefined);
    } finally {
      release();
      if (!kept) session.close();
      observer.operationFinished({
        operation, serial, outcome, durationMs: performance.now() - startedAt, remoteAddress,
        ...(failure === undefined ? {} : { error: failure }),
      });
      observer.sessionClosed();
    }
    return kept;
  }

  /**
   * Challenge, proof, then the operation: one transaction in the card store that locks the serial
   * ([0081]), authenticates the owner and checks and sets the state. Nothing is locked before the
   * client has proved it is a genuine implementation, so a peer that merely opens a session blocks
   * nobody. Returns the encoded result.
   */
  async function runOperation<O extends Operation>(session: ChannelSession, serial: string, operation: O, reached: { cardStore: boolean }): Promise<Uint8Array> {
    const kdf: KdfParams = operation === 'enroll' ? newKdfParams() : { algorithm: 'argon2id', ...(await store.kdfParameters(serial)) };
    const ri1 = newChallengeNonce();
    const issuedAt = now();
    // Enrollment seals under the card id, which the server fixed when the card was created; only the
    // holder of the enrollment token can unwrap it (and the card's key kind beside it).
    const wrapped = operation === 'enroll' ? await store.enrollSecrets(serial, ri1) : undefined;
    await session.send(encodeChallenge(operation, { ...challengeOf(kdf, ri1), ...(wrapped ?? {}) }));

    const proof = decodeProof(operation, await session.receive(CHALLENGE_LIFETIME_MS));
    const authKey = 'authKey' in proof ? proof.authKey : undefined;
    let owner: Uint8Array | undefined;
    try {
      checkProof(proof, serial, ri1, issuedAt);
      owner = authKey === undefined ? undefined : authVerifier(authKey);
    } finally {
      if (authKey !== undefined) wipe(authKey);
    }
    crashPoint(`server.${operation}.proof`);
    reached.cardStore = true;
    const result = await handleOperation(operation, { store, serial, owner, kdf }, proof);
    crashPoint(`server.${operation}.committed`);
    return encodeResult(operation, result);
  }

  /**
   * A server-held card's SIGN AND INCREMENT (patent 003 [0096]): the same challenge and implementation proofs as
   * every operation, the holder's proof (MUK, holder secret) and h; then one transaction that checks the holder,
   * signs with the card's next counter value and records the next one. The answer leaves only after the commit.
   * Each signature is a session, so the per-peer session and challenge limits (server-limits.ts) bound it like any
   * operation: by default 120 a minute from one address; a deployment serving rented programs raises them.
   */
  async function runSign(session: ChannelSession, serial: string, reached: { cardStore: boolean }): Promise<Uint8Array> {
    const kdf: KdfParams = { algorithm: 'argon2id', ...(await store.kdfParameters(serial)) };
    const ri1 = newChallengeNonce();
    const issuedAt = now();
    await session.send(encodeSignChallenge(challengeOf(kdf, ri1)));
    const proof = decodeSignProof(await session.receive(CHALLENGE_LIFETIME_MS));
    try {
      checkProof(proof, serial, ri1, issuedAt);
    } catch (error) {
      wipe(proof.holderSecret);
      throw error;
    }
    crashPoint(`server.${SIGN_OPERATION}.proof`);
    reached.cardStore = true;
    const result = await handleSign(store, serial, proof);
    crashPoint(`server.${SIGN_OPERATION}.committed`);
    return encodeSignResult(result);
  }

  /** What every challenge carries: the KDF parameters, the nonce ri1 and the keyfile-signing key. */
  function challengeOf(kdf: KdfParams, ri1: Uint8Array): Challenge {
    const { salt, memoryKiB, iterations, parallelism } = kdf;
    return { salt, memoryKiB, iterations, parallelism, ri1, keyfileKey };
  }

  /** [0042], [0048]: answered within 30 s, by a genuine implementation. */
  function checkProof(proof: ProofBase, serial: string, ri1: Uint8Array, issuedAt: number): void {
    if (now() - issuedAt > CHALLENGE_LIFETIME_MS) throw new OperationRefused('implementation', 'the challenge was not answered within 30 seconds');
    checkImplementation(keys, implementationProofs, proof, serial, ri1);
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  const retention = startEventRetention(database, { retentionDays: settled.eventsRetentionDays, now });
  const address = http.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `ws://${shownHost}:${address.port}`,
    port: address.port,
    publicKey: encodeServerPublicKey(keys.channelPublicKey),
    async close() {
      await retention.stop();
      for (const socket of sockets) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/**
 * The secret the KDF salts of serials without an enrolled card are derived from: a hash of the
 * server's channel private key, so every server process of one deployment answers alike.
 */
function unknownSerialSaltSecret(channelPrivateKey: Uint8Array): Uint8Array {
  return hmacSha256(channelPrivateKey, utf8('vsc-unknown-serial-salts/1'));
}

/**
 * What the card store says to a wrong secret (password, enrollment token, recovery code), or to a
 * try its failure bucket did not let through: each counts against the peer's failed-proof budget, so
 * an address hammering during a back-off is blocked like one guessing.
 */
function isFailedProof(error: unknown): boolean {
  return error instanceof OperationRefused && (error.reason === 'authentication' || error.reason === 'retry-later' || error.reason === 'blocked');
}

/** The refusal sent to the client: never a stack, never a secret; one line the refusal schema accepts. */
export function describeFailure(error: unknown): [Refusal, string] {
  const [reason, message] = classify(error);
  const line = message.replace(/\n/g, ' ').slice(0, 400);
  return [reason, line.length > 0 ? line : reason];
}

function classify(error: unknown): [Refusal, string] {
  if (error instanceof OperationRefused) return [error.reason, error.message];
  if (error instanceof ProtocolError) return ['protocol', error.message];
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : '';
  if (code.startsWith('kdf.')) return ['protocol', (error as Error).message];
  if (code.startsWith('channel.')) return ['protocol', 'the session ended'];
  return ['internal', 'the server could not complete the operation'];
}
