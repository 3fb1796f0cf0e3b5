// The machine-unique key (MUK, patent [0031], [0088], DESIGN "Keys and secrets"): a hash of facts
// about the machine. Unlike the patent it leaves out the network address (a new DHCP lease must not
// strand a card).
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import { concatBytes, uintToBytes, utf8 } from '../bytes/index.js';
import { sha256 } from '../crypto/index.js';
import { VscError } from '../errors/index.js';

export const MUK_LENGTH = 32;
const MUK_DOMAIN = 'vsc-muk/1';
const OVERRIDE_DOMAIN = utf8('vsc-muk-override/1');

export interface MachineFacts {
  machineId: string;
  hostname: string;
  user: string;
  rootDiskBytes: bigint;
}

/** Reads the facts the MUK is computed from; fails with a readable error if one is unavailable. */
export async function readMachineFacts(): Promise<MachineFacts> {
  let machineId: string;
  try {
    machineId = (await readFile('/etc/machine-id', 'utf8')).trim();
  } catch (cause) {
    throw new VscError('muk.machine-id', 'cannot read /etc/machine-id (tests simulate a machine with --machine-id under VSC_SIMULATE_MACHINES=1)', { cause });
  }
  if (machineId === '') throw new VscError('muk.machine-id', '/etc/machine-id is empty (tests simulate a machine with --machine-id under VSC_SIMULATE_MACHINES=1)');
  let rootDiskBytes: bigint;
  try {
    const stats = await statfs('/', { bigint: true });
    rootDiskBytes = stats.blocks * stats.bsize;
  } catch (cause) {
    throw new VscError('muk.root-disk', 'cannot read the size of the root filesystem', { cause });
  }
  return { machineId, hostname: os.hostname(), user: os.userInfo().username, rootDiskBytes };
}

/** A field as 4-byte big-endian length ‖ bytes, so that no two fact lists encode alike. */
function field(bytes: Uint8Array): Uint8Array {
  return concatBytes(uintToBytes(BigInt(bytes.length), 4), bytes);
}

/** SHA-256 over the length-prefixed fields: domain, machine id, host name, user, root disk size (8 bytes). */
export function computeMuk(facts: MachineFacts): Uint8Array {
  for (const name of ['machineId', 'hostname', 'user'] as const) {
    if (typeof facts[name] !== 'string') throw new TypeError(`expected machine fact ${name} as a string, got ${typeof facts[name]}`);
  }
  if (typeof facts.rootDiskBytes !== 'bigint') {
    throw new TypeError(`expected machine fact rootDiskBytes as a bigint, got ${typeof facts.rootDiskBytes}`);
  }
  return sha256(
    concatBytes(
      field(utf8(MUK_DOMAIN)),
      field(utf8(facts.machineId)),
      field(utf8(facts.hostname)),
      field(utf8(facts.user)),
      field(uintToBytes(facts.rootDiskBytes, 8)),
    ),
  );
}

/** The MUK of a simulated machine (`--machine-id` / VSC_MACHINE_ID): several "machines" on one host in tests. */
export function mukFromOverride(machineId: string): Uint8Array {
  if (typeof machineId !== 'string' || machineId === '') {
    throw new TypeError(`expected a non-empty machine id override, got ${JSON.stringify(machineId)}`);
  }
  return sha256(concatBytes(OVERRIDE_DOMAIN, utf8(machineId)));
}
