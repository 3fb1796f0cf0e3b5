// A server-held card on its holder's machine (DESIGN.md "Software rental", trust model; patent 003 [0096]), in one
// process: a real VSC server on SQLite and its WebSocket channel, the client library's enroll and insert, the running
// card assembled by RunningCard over a ServerBacking, and the typed VSC applet client talking to its card OS. The
// signing seed never reaches the client: its information holds the server's public key, and SIGN AND INCREMENT ([0053]
// step [1]) is one `sign` session per signature. Also the card's VSC side alone, against a signer that misbehaves.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignRefusedError, type SignAndIncrementResult } from '../../src/apdu/index.js';
import { ConditionsNotSatisfiedError, VscAppletClient, verifySignAndIncrement, type CardTransport } from '../../src/card-client/index.js';
import { readCardAttestation, verifyCardAttestation } from '../../src/card-attestation/index.js';
import {
  RunningCard, ServerHeldVscCard, decodeProtectedInformation, encodeProtectedInformation, newProtectedInformation, type CardBacking, type OpenedCard, type ServerHeldSigner,
} from '../../src/card/index.js';
import { ed25519KeyFromSeed, sha256 } from '../../src/crypto/index.js';
import { ExitCode } from '../../src/errors/index.js';
import { OperationRefused, ServerBacking, insertCard, mukFromOverride, removeCard, signOnServer, unchangedUpload } from '../../src/vsc-client/index.js';
import { SERVER_HELD_PASSWORD, startServerHeldServer, type ServerHeldServer } from '../support/server-held-server.js';

const MUK_A = mukFromOverride('held machine a');
const MUK_B = mukFromOverride('held machine b');
const H = (i: number): Uint8Array => sha256(Uint8Array.of(i & 0xff, i >> 8));
let deployment: ServerHeldServer;

beforeAll(async () => {
  // The limits are the server's own; this file's many signatures come from one address (test/support/shared-address-limits.ts).
  deployment = await startServerHeldServer('vsc-held-client-', { proofsPerPeerPerMinute: 1_000_000, sessionsPerPeerPerSecond: 100_000 });
});
afterAll(() => deployment.close());

async function refused(promise: Promise<unknown>): Promise<OperationRefused> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(OperationRefused);
  return error as OperationRefused;
}

/** A running card of `serial` on machine `muk`, and the typed VSC applet client on its card OS. */
async function runningCard(serial: string, muk = MUK_A) {
  const backing = new ServerBacking({ endpoint: deployment.endpoint, serial, credentials: { password: SERVER_HELD_PASSWORD.slice() }, muk });
  const card = await RunningCard.open(backing);
  card.os.powerOn();
  const transport: CardTransport = { transmit: (command) => card.os.transmit(command) };
  const client = new VscAppletClient(transport);
  await client.select();
  return { backing, card, client };
}

describe('[0096] enrollment and insert of a server-held card: no seed on the client', () => {
  it('the owner\'s information holds the server\'s public key and no seed; the insert carries the server\'s attestation', async () => {
    const publicKey = await deployment.enrollServerHeld('HC-1', MUK_A);
    const inserted = await insertCard(deployment.endpoint, 'HC-1', { password: SERVER_HELD_PASSWORD.slice() }, MUK_A);
    const info = decodeProtectedInformation(inserted.plaintext);
    expect(info.signingSeed).toHaveLength(0);
    expect(info.serverHeldPublicKey).toEqual(publicKey);
    expect(inserted.counterWindow).toEqual([0n, 0n]);
    const attestation = readCardAttestation(inserted.attestation!);
    verifyCardAttestation(attestation, [deployment.attester.publicKey]);
    expect(attestation).toMatchObject({ serial: 'HC-1', kind: 'server-held', keyMode: 'individual' });
    expect(attestation.publicKey).toEqual(publicKey);
    // The server's own copy of the seed is the one whose public key the client knows.
    const row = await deployment.database.db.selectFrom('cards').select('held_seed').where('serial', '=', 'HC-1').executeTakeFirstOrThrow();
    expect(deployment.seeds.withSeed('HC-1', Uint8Array.from(row.held_seed!), (seed) => ed25519KeyFromSeed(seed).publicKey)).toEqual(publicKey);
    await removeCard(deployment.endpoint, 'HC-1', unchangedUpload(inserted, MUK_A, 0n));
  });
});

describe('[0053] step [1] SIGN AND INCREMENT of a running server-held card, through its VSC applet', () => {
  it('GET PUBLIC KEY answers the server\'s key; consecutive counters; every signature verifies; GET COUNTER follows', async () => {
    const publicKey = await deployment.enrollServerHeld('HC-2', MUK_A);
    const { card, client } = await runningCard('HC-2');
    try {
      expect(await client.publicKey()).toEqual(publicKey);
      expect(await client.serialNumber()).toBe('HC-2');
      expect(await client.counter()).toBe(0n);
      for (let i = 0; i < 5; i++) {
        const answer = await client.signAndIncrement(H(i));
        expect(answer.counter).toBe(BigInt(i));
        expect(verifySignAndIncrement(answer, H(i), { publicKey, serial: 'HC-2' })).toBe(true);
        expect(await client.counter()).toBe(BigInt(i + 1));
      }
    } finally {
      await card.giveBack();
      await card.destroy();
    }
    expect((await deployment.store.show('HC-2')).state).toBe('idle');
    // Inserted again: the counter goes on where the server left it.
    const again = await runningCard('HC-2');
    try {
      expect(await again.client.counter()).toBe(5n);
      expect((await again.client.signAndIncrement(H(9))).counter).toBe(5n);
    } finally {
      await again.card.giveBack();
      await again.card.destroy();
    }
  });

  it('signatures from several applications at once are serialised: each counter once, all verify', async () => {
    const publicKey = await deployment.enrollServerHeld('HC-3', MUK_A);
    const { card, client } = await runningCard('HC-3');
    try {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => client.signAndIncrement(H(i)).then((answer) => ({ answer, i }))));
      expect(answers.map(({ answer }) => answer.counter).sort((a, b) => Number(a - b))).toEqual(Array.from({ length: 12 }, (_, i) => BigInt(i)));
      for (const { answer, i } of answers) expect(verifySignAndIncrement(answer, H(i), { publicKey, serial: 'HC-3' })).toBe(true);
    } finally {
      await card.giveBack();
      await card.destroy();
    }
  });

  it('a card destroyed while in use answers 6985 at its next SIGN AND INCREMENT, and signs nothing more', async () => {
    await deployment.enrollServerHeld('HC-4', MUK_A);
    const { card, client } = await runningCard('HC-4');
    try {
      await client.signAndIncrement(H(0));
      await deployment.store.destroy('HC-4', 'admin');
      await expect(client.signAndIncrement(H(1))).rejects.toBeInstanceOf(ConditionsNotSatisfiedError);
      expect(await client.counter()).toBe(1n);
    } finally {
      await card.destroy();
    }
  });

  it('measures signatures per second in one process (one session, Noise handshake and transaction each)', async () => {
    await deployment.enrollServerHeld('HC-5', MUK_A);
    const { card, client } = await runningCard('HC-5');
    try {
      const count = 300;
      const started = performance.now();
      for (let i = 0; i < count; i++) await client.signAndIncrement(H(i));
      const seconds = (performance.now() - started) / 1000;
      console.log(`server-held SIGN AND INCREMENT, in-process, SQLite: ${count} signatures in ${seconds.toFixed(2)} s = ${(count / seconds).toFixed(0)} signatures/s`);
      expect(await client.counter()).toBe(BigInt(count));
    } finally {
      await card.giveBack();
      await card.destroy();
    }
  });
});

describe('only the machine and process holding the card may sign', () => {
  it('another machine, another process on the holder\'s machine, and the holder after remove are refused (exit 5)', async () => {
    await deployment.enrollServerHeld('HC-6', MUK_A);
    const inserted = await insertCard(deployment.endpoint, 'HC-6', { password: SERVER_HELD_PASSWORD.slice() }, MUK_A);
    const holder = { muk: MUK_A, holderSecret: inserted.holderSecret.slice() };
    expect((await signOnServer(deployment.endpoint, 'HC-6', holder, H(0))).counter).toBe(0n);
    for (const stranger of [{ muk: MUK_B, holderSecret: inserted.holderSecret.slice() }, { muk: MUK_A, holderSecret: new Uint8Array(32).fill(7) }]) {
      const refusal = await refused(signOnServer(deployment.endpoint, 'HC-6', stranger, H(1)));
      expect([refusal.reason, refusal.exitCode]).toEqual(['holder-mismatch', ExitCode.mukMismatch]);
    }
    // A second machine cannot even insert it.
    expect((await refused(insertCard(deployment.endpoint, 'HC-6', { password: SERVER_HELD_PASSWORD.slice() }, MUK_B))).reason).toBe('wrong-state');
    await removeCard(deployment.endpoint, 'HC-6', unchangedUpload(inserted, MUK_A, 1n));
    expect((await refused(signOnServer(deployment.endpoint, 'HC-6', holder, H(2)))).reason).toBe('holder-mismatch');
    // Nothing the refused tries did moved the counter.
    const again = await insertCard(deployment.endpoint, 'HC-6', { password: SERVER_HELD_PASSWORD.slice() }, MUK_B);
    expect(again.counterWindow).toEqual([1n, 1n]);
    await removeCard(deployment.endpoint, 'HC-6', unchangedUpload(again, MUK_B, 1n));
  });
});

/** A backing that opens one card's information and signs through `signer`. */
class HeldBacking implements CardBacking {
  readonly grantMode = 'ahead' as const;
  constructor(private readonly opened: OpenedCard) {}
  async open(): Promise<OpenedCard> {
    return { ...this.opened, plaintext: this.opened.plaintext.slice() };
  }
  grantMore(): Promise<never> {
    throw new Error('a server-held card asks for no counter values');
  }
  async save(): Promise<void> {}
  async giveBack(): Promise<void> {}
  async close(): Promise<void> {}
}

describe('the card\'s VSC side checks what its server answers before any application sees it', () => {
  const seed = new Uint8Array(32).fill(0x51);
  const key = ed25519KeyFromSeed(seed);
  const information = () => encodeProtectedInformation(newProtectedInformation({ serverHeldPublicKey: key.publicKey }));
  const honest = (next: bigint): ServerHeldSigner & { calls: number } => {
    let counter = next;
    return {
      publicKey: key.publicKey, next, calls: 0,
      async signAndIncrement(h) {
        this.calls++;
        const used = counter++;
        const { signedDigest } = await import('../../src/apdu/index.js');
        return { counter: used, signature: key.sign(signedDigest(h, used, 'individual', 'HV-1')) };
      },
    };
  };

  it('a counter below one already learned, or a signature that does not verify, is refused (6581) and the counter stays', async () => {
    const lying = (answer: (h: Uint8Array) => SignAndIncrementResult): ServerHeldSigner => ({ publicKey: key.publicKey, next: 5n, signAndIncrement: async (h) => answer(h) });
    for (const signer of [lying(() => ({ counter: 4n, signature: new Uint8Array(64) })), lying(() => ({ counter: 5n, signature: new Uint8Array(64) }))]) {
      const card = new ServerHeldVscCard('HV-1', signer);
      await expect(card.signAndIncrement(H(0))).rejects.toMatchObject({ reason: 'storage-failed' });
      expect(card.counter()).toBe(5n);
    }
  });

  it('a refusal stays a refusal (6985); a lost answer is a storage failure (6581); a removed card refuses at once', async () => {
    const refusing = new ServerHeldVscCard('HV-1', { publicKey: key.publicKey, next: 0n, signAndIncrement: () => Promise.reject(new SignRefusedError('disabled', 'the server refused')) });
    await expect(refusing.signAndIncrement(H(0))).rejects.toMatchObject({ reason: 'disabled' });
    const silent = new ServerHeldVscCard('HV-1', { publicKey: key.publicKey, next: 0n, signAndIncrement: () => Promise.reject(new Error('connection closed')) });
    await expect(silent.signAndIncrement(H(0))).rejects.toMatchObject({ reason: 'storage-failed' });
    const signer = honest(0n);
    const removed = new ServerHeldVscCard('HV-1', signer);
    removed.disable();
    await expect(removed.signAndIncrement(H(0))).rejects.toMatchObject({ reason: 'disabled' });
    expect(signer.calls).toBe(0);
  });

  it('RunningCard refuses server-held information without its server, and a server that names another key', async () => {
    const opened: OpenedCard = { serial: 'HV-1', keyMode: 'individual', plaintext: information(), grant: { start: 0n, end: 0n } };
    await expect(RunningCard.open(new HeldBacking(opened))).rejects.toThrow(/card HV-1 is server-held: its SIGN AND INCREMENT runs on its VSC server/);
    const other = { ...honest(0n), publicKey: ed25519KeyFromSeed(new Uint8Array(32).fill(2)).publicKey };
    await expect(RunningCard.open(new HeldBacking({ ...opened, serverHeld: other }))).rejects.toThrow(/names another public key/);
    const software = { ...opened, plaintext: encodeProtectedInformation(newProtectedInformation()), serverHeld: honest(0n) };
    await expect(RunningCard.open(new HeldBacking(software))).rejects.toThrow(/holds its own signing seed/);
    const card = await RunningCard.open(new HeldBacking({ ...opened, serverHeld: honest(7n) }));
    expect(card.publicKey).toEqual(key.publicKey);
    expect(card.counterStatus).toEqual({ next: 7n, nextGrant: undefined });
    await card.destroy();
  });
});
