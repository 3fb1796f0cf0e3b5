// Issue 13, fuzz: random and mutated operation messages (fast-check) sent as hello and proof after a
// valid Noise handshake. Over real sessions against a real `vsc server start` (limits raised so the
// fuzzer is not rate-limited): no crash, no internal error, no operation done, the cards table
// unchanged, every session closed by the server. The bulk of the 100,000 messages goes through the
// same decoders in process (a session costs a handshake; 100,000 of them would take minutes on 2 cores).
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelError, connectSession } from '../../src/channel/index.js';
import { insertCard, mukFromOverride } from '../../src/vsc-client/index.js';
import {
  MESSAGE_TYPES, OPERATIONS, OWNER_AUTHENTICATED_OPERATIONS, ProtocolError, decodeHello, decodeProof, encodeHello, encodeProof, type Operation, type Proof,
} from '../../src/vsc-protocol/index.js';
import { describeFailure } from '../../src/vsc-server/index.js';
import { SPAWNED_PASSWORD, startSpawnedServer, type SpawnedServer } from '../support/index.js';

const SEED = Number(process.env['VSC_FUZZ_SEED'] ?? 20261128);
const IN_PROCESS_MESSAGES = 100_000;
const SESSIONS = 8000;
const PARALLEL = 16;
const SERIALS = ['FUZZ-IDLE', 'FUZZ-INUSE', 'FUZZ-UNKNOWN'];

const random = (length: number): Uint8Array => new Uint8Array(randomBytes(length));

/** A well-formed proof for `operation` whose master proof is wrong: it can never pass the implementation check. */
function wrongProof(operation: Operation): Uint8Array {
  const base = { ...(OWNER_AUTHENTICATED_OPERATIONS.includes(operation) ? { authKey: random(32) } : {}), ri2: random(32), masterProof: random(32) };
  const fields: Record<Operation, object> = {
    enroll: { muk: random(32), token: 'A'.repeat(24), sealed: random(120), publicKey: random(32) },
    insert: { muk: random(32), holderSecret: random(32) },
    extend: { muk: random(32), holderSecret: random(32) },
    remove: { muk: random(32), holderSecret: random(32), sealed: random(200), sealedVersion: 2n, nextCounter: 7n },
    recover: { muk: random(32) },
    destroy: { muk: random(32) },
    unblock: { recoveryCode: 'A'.repeat(32) },
  };
  return encodeProof(operation, { ...base, ...fields[operation] } as Proof<typeof operation>);
}

const VALID_HELLOS = OPERATIONS.flatMap((operation) => SERIALS.map((serial) => encodeHello({ operation, serial })));
const VALID_PROOFS = OPERATIONS.map(wrongProof);

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = bytes.slice();
  for (const mutation of mutations) {
    const at = out.length === 0 ? 0 : mutation.at % (out.length + 1);
    switch (mutation.kind) {
      case 'flip':
        if (at < out.length) out[at] = out[at]! ^ (1 << mutation.bit);
        break;
      case 'set':
        if (at < out.length) out[at] = mutation.value;
        break;
      case 'truncate':
        out = out.slice(0, at);
        break;
      case 'insert':
        out = Uint8Array.from([...out.subarray(0, at), ...mutation.bytes, ...out.subarray(at)]);
        break;
      case 'delete':
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + mutation.count)]);
        break;
    }
  }
  return out;
}

/** Random bytes, a valid message, or a valid message mutated one to four times. */
const messageFrom = (valid: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 400 }) },
    { weight: 1, arbitrary: fc.constantFrom(...valid) },
    { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 })).map(([bytes, mutations]) => mutate(bytes, mutations)) },
  );

const sessionArbitrary = fc.record({
  hello: messageFrom([...VALID_HELLOS, ...VALID_PROOFS]),
  proof: messageFrom([...VALID_PROOFS, ...VALID_HELLOS]),
  extra: fc.array(messageFrom([...VALID_PROOFS, ...VALID_HELLOS]), { maxLength: 6 }),
  /** Everything at once, without waiting for the challenge. */
  burst: fc.boolean(),
});

describe('fuzzed operation messages', { timeout: 240_000 }, () => {
  it(`${IN_PROCESS_MESSAGES.toLocaleString('en')} messages through the server's decoders: each accepted or refused as 'protocol', never anything else`, () => {
    const started = performance.now();
    let accepted = 0;
    const property = fc.property(messageFrom([...VALID_HELLOS, ...VALID_PROOFS]), fc.constantFrom(...OPERATIONS), (bytes, operation) => {
      for (const decode of [() => decodeHello(bytes), () => decodeProof(operation, bytes)]) {
        try {
          decode();
          accepted++;
        } catch (error) {
          if (!(error instanceof ProtocolError) || describeFailure(error)[0] !== 'protocol') throw error;
        }
      }
    });
    fc.assert(property, { numRuns: IN_PROCESS_MESSAGES / 2, seed: SEED });
    console.log(`in process: ${IN_PROCESS_MESSAGES} decodes (seed ${SEED}) in ${Math.round(performance.now() - started)} ms, ${accepted} well-formed`);
  });

  describe('over real sessions', () => {
    let server: SpawnedServer;
    beforeAll(async () => {
      server = await startSpawnedServer([
        '--sessions-per-peer-per-second', '1000000', '--sessions-per-second', '1000000', '--proofs-per-peer-per-minute', '100000000', '--proofs-per-second', '1000000',
        '--failed-proofs-per-peer-per-minute', '1000000', '--max-connections-per-peer', '4096', '--max-sessions-per-peer', '1024',
      ]);
      for (const serial of SERIALS.slice(0, 2)) await server.enroll(serial);
      await insertCard(server.endpoint, 'FUZZ-INUSE', { password: SPAWNED_PASSWORD }, mukFromOverride('fuzz-holder'));
    }, 60_000);
    afterAll(async () => server?.close());

    it(`${SESSIONS.toLocaleString('en')} sessions: no crash, no state change, each closed by the server`, async () => {
      const before = server.cardsDump();
      const cases = fc.sample(sessionArbitrary, { numRuns: SESSIONS, seed: SEED });
      const answers = new Map<string, number>();
      const note = (what: string): void => void answers.set(what, (answers.get(what) ?? 0) + 1);
      let sent = 0;
      let next = 0;
      const started = performance.now();
      await Promise.all(Array.from({ length: PARALLEL }, async () => {
        while (next < cases.length) {
          const { hello, proof, extra, burst } = cases[next++]!;
          const session = await connectSession(server.url, server.endpoint.serverKey, { timeoutMs: 15_000 });
          const send = async (bytes: Uint8Array): Promise<void> => {
            await session.send(bytes).then(() => void sent++, () => undefined);
          };
          const receive = (): Promise<Uint8Array | ChannelError> => session.receive().catch((error: unknown) => error as ChannelError);
          let answer: Uint8Array | ChannelError;
          if (burst) {
            for (const bytes of [hello, proof, ...extra]) await send(bytes);
            answer = await receive();
          } else {
            await send(hello);
            answer = await receive();
            if (answer instanceof Uint8Array && answer[0] === MESSAGE_TYPES.challenge) {
              note('challenge');
              for (const bytes of [proof, ...extra]) await send(bytes);
              answer = await receive();
            }
          }
          note(answer instanceof Uint8Array ? `type ${answer[0]}` : answer.code);
          // Whatever came, the server ends the session: the next receive sees it closed, not a timeout.
          let ending = await receive();
          while (ending instanceof Uint8Array) {
            note(`then type ${ending[0]}`);
            ending = await receive();
          }
          note(`ended ${ending instanceof ChannelError ? ending.code : 'open'}`);
          session.close();
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      console.log(`over ${SESSIONS} sessions (seed ${SEED}): ${sent} fuzzed messages sent in ${seconds.toFixed(1)} s; answers ${JSON.stringify(Object.fromEntries(answers))}`);

      expect(server.process.running()).toBe(true);
      expect(server.cardsDump()).toBe(before);
      expect(answers.get(`type ${MESSAGE_TYPES.result}`) ?? 0).toBe(0); // no operation was ever done
      expect(answers.get('ended channel.timeout') ?? 0).toBe(0);
      expect(answers.get('ended channel.closed')).toBe(SESSIONS);
      expect(sent).toBeGreaterThan(SESSIONS);
      expect(await server.metric('vsc_operations_total', { outcome: 'internal' })).toBe(0);
      expect(await server.metric('vsc_operations_total', { outcome: 'ok' })).toBe(3); // the setup's two enrollments and one insert
      // And it still serves: the holder's card stays in use, a fresh insert of the idle card works.
      await insertCard(server.endpoint, 'FUZZ-IDLE', { password: SPAWNED_PASSWORD }, mukFromOverride('fuzz-after'));
    });
  });
});
