// Child process for the dongle tests: opens dongles by URI and runs their methods on request, one JSON line in,
// one JSON line out on stdout. It exists because a PKCS#11 module reads its configuration (SOFTHSM2_CONF,
// TPM2_PKCS11_*) from the environment of the process that loads it, and a vitest worker thread's process.env
// never reaches the C library: the tests start this program with the environment the token needs.
//   in:  {"id":1,"op":"open","args":["pkcs11:token=..."]}        out: {"id":1,"ok":true,"value":0,"ms":12.3}
//   in:  {"id":2,"op":"sign","args":[0,"00ff"]}                  out: {"id":2,"ok":true,"value":"<hex>","ms":1.1}
//   failure: {"id":2,"ok":false,"error":{"name":"DongleAbsentError","code":"dongle.absent","exitCode":3,"message":"..."}}
import { createInterface } from 'node:readline';
import { fromHex, toHex } from '../../src/bytes/index.js';
import { dongleSecrets, openDongle, type Dongle, type DongleIdentity, type DongleSlot } from '../../src/dongle-backend/index.js';
import { VscError } from '../../src/errors/index.js';

const dongles: (Dongle | undefined)[] = [];
const secrets = dongleSecrets(async () => {
  throw new Error('the dongle driver has no terminal to ask for a PIN: give the URI a pin-source');
});

function dongle(handle: unknown): Dongle {
  const found = typeof handle === 'number' ? dongles[handle] : undefined;
  if (found === undefined) throw new Error(`no open dongle ${String(handle)}`);
  return found;
}

function identity(value: DongleIdentity): Record<string, string> {
  return { kind: value.kind, publicKey: toHex(value.publicKey), fingerprint: toHex(value.fingerprint), description: value.description };
}

function cardKeys(handle: unknown): NonNullable<Dongle['cardKeys']> {
  const keys = dongle(handle).cardKeys;
  if (keys === undefined) throw new Error('this dongle has no card keys');
  return keys;
}

type Operation = (...args: unknown[]) => Promise<unknown>;

const operations: Record<string, Operation> = {
  open: async (uri) => dongles.push(await openDongle(String(uri), secrets)) - 1,
  identify: async (handle) => identity(await dongle(handle).identify()),
  ensureKey: async (handle) => identity(await dongle(handle).ensureKey()),
  sign: async (handle, hex) => toHex(await dongle(handle).sign(fromHex(String(hex)))),
  read: async (handle, slot) => {
    const bytes = await dongle(handle).read(slot as DongleSlot);
    return bytes === undefined ? null : toHex(bytes);
  },
  write: async (handle, slot, hex) => dongle(handle).write(slot as DongleSlot, fromHex(String(hex))),
  close: async (handle) => {
    await dongle(handle).close();
    dongles[handle as number] = undefined;
  },
  cardKeysUnsupported: async (handle) => (await cardKeys(handle).unsupported()) ?? null,
  cardKeysGenerate: async (handle, serial) => toHex(await cardKeys(handle).generate(String(serial))),
  cardKeysPublicKey: async (handle, serial) => toHex(await cardKeys(handle).publicKey(String(serial))),
  cardKeysSign: async (handle, serial, hex) => toHex(await cardKeys(handle).sign(String(serial), fromHex(String(hex)))),
};

function reply(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const lines = createInterface({ input: process.stdin });
// Requests run one after another, as a card process would call its dongle.
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    let request: { id?: unknown; op?: unknown; args?: unknown };
    try {
      request = JSON.parse(line) as typeof request;
    } catch {
      reply({ id: null, ok: false, error: { name: 'SyntaxError', message: 'not a JSON line' } });
      return;
    }
    const operation = typeof request.op === 'string' ? operations[request.op] : undefined;
    const started = performance.now();
    try {
      if (operation === undefined) throw new Error(`unknown operation ${String(request.op)}`);
      const value = await operation(...(Array.isArray(request.args) ? (request.args as unknown[]) : []));
      reply({ id: request.id, ok: true, value: value ?? null, ms: performance.now() - started });
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      reply({
        id: request.id,
        ok: false,
        ms: performance.now() - started,
        error: { name: failure.name, message: failure.message, code: failure instanceof VscError ? failure.code : undefined, exitCode: failure instanceof VscError ? failure.exitCode : undefined },
      });
    }
  });
});
lines.on('close', () => {
  // stdin closed: the test is done with us. A dongle whose token hangs may keep a call running: exit regardless.
  void queue.then(() => process.exit(0));
});
