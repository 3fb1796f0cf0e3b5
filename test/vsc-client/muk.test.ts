// The machine-unique key (patent [0031], [0088], DESIGN "Keys and secrets").
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { computeMuk, mukFromOverride, readMachineFacts, type MachineFacts } from '../../src/vsc-client/muk.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes/index.js';
import { VscError } from '../../src/errors/index.js';

const facts: MachineFacts = {
  machineId: '0123456789abcdef0123456789abcdef',
  hostname: 'workstation',
  user: 'alice',
  rootDiskBytes: 512_000_000_000n,
};

describe('computeMuk', () => {
  it('hashes the length-prefixed fields with domain "vsc-muk/1"', () => {
    const field = (bytes: Uint8Array): Uint8Array => concatBytes(fromHex(bytes.length.toString(16).padStart(8, '0')), bytes);
    const expected = nobleSha256(
      concatBytes(
        field(utf8('vsc-muk/1')),
        field(utf8(facts.machineId)),
        field(utf8(facts.hostname)),
        field(utf8(facts.user)),
        field(fromHex(facts.rootDiskBytes.toString(16).padStart(16, '0'))),
      ),
    );
    expect(toHex(computeMuk(facts))).toBe(toHex(expected));
    expect(toHex(computeMuk({ ...facts }))).toBe(toHex(computeMuk(facts)));
  });

  it('changes with every fact', () => {
    const base = toHex(computeMuk(facts));
    const changed: MachineFacts[] = [
      { ...facts, machineId: facts.machineId.replace('0', '1') },
      { ...facts, hostname: 'workstation2' },
      { ...facts, user: 'bob' },
      { ...facts, rootDiskBytes: facts.rootDiskBytes + 1n },
    ];
    const mukList = changed.map((other) => toHex(computeMuk(other)));
    for (const muk of mukList) expect(muk).not.toBe(base);
    expect(new Set(mukList).size).toBe(changed.length);
  });

  it('is unambiguous: shifting characters between fields changes it', () => {
    const a = computeMuk({ ...facts, hostname: 'ab', user: 'c' });
    const b = computeMuk({ ...facts, hostname: 'a', user: 'bc' });
    const c = computeMuk({ ...facts, machineId: 'm1', hostname: '' });
    const d = computeMuk({ ...facts, machineId: 'm', hostname: '1' });
    expect(toHex(a)).not.toBe(toHex(b));
    expect(toHex(c)).not.toBe(toHex(d));
  });

  it('checks the types of the facts', () => {
    expect(() => computeMuk({ ...facts, rootDiskBytes: 5 as unknown as bigint })).toThrow(/rootDiskBytes as a bigint, got number/);
    expect(() => computeMuk({ ...facts, user: undefined as unknown as string })).toThrow(/user as a string, got undefined/);
  });
});

describe('mukFromOverride', () => {
  it('is SHA-256("vsc-muk-override/1" ‖ machine id), different per simulated machine', () => {
    expect(toHex(mukFromOverride('machine-a'))).toBe(toHex(nobleSha256(utf8('vsc-muk-override/1machine-a'))));
    expect(toHex(mukFromOverride('machine-a'))).not.toBe(toHex(mukFromOverride('machine-b')));
    expect(toHex(mukFromOverride(facts.machineId))).not.toBe(toHex(computeMuk(facts)));
    expect(() => mukFromOverride('')).toThrow(/non-empty machine id override/);
  });
});

describe('readMachineFacts', () => {
  it('reads /etc/machine-id, host name, user and root disk size (or says which is missing)', async () => {
    let machineId: string | undefined;
    try {
      machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    } catch {
      machineId = undefined;
    }
    if (machineId === undefined || machineId === '') {
      // No machine id on this host (some containers): the client must say so, naming the override.
      await expect(readMachineFacts()).rejects.toSatisfy(
        (error: unknown) => error instanceof VscError && error.code === 'muk.machine-id' && /--machine-id/.test(error.message),
      );
      return;
    }
    const read = await readMachineFacts();
    expect(read.machineId).toBe(machineId);
    expect(read.hostname).toBe(os.hostname());
    expect(read.user).toBe(os.userInfo().username);
    expect(read.rootDiskBytes).toBeGreaterThan(0n);
    expect(computeMuk(read)).toHaveLength(32);
  });
});
