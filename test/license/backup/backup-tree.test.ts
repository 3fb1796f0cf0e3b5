// The backup's Merkle tree (src/license/backup/backup-tree.ts; RFC 6962 §2.1, RFC 9162 §2.1): roots checked against an
// independent recursive implementation written here and the reference tree heads of the RFC 6962 reference
// implementation (google/certificate-transparency, merkle_tree_test.cc: 8 leaves, roots 1..8, inclusion proofs), every
// audit path of trees 1..33 reaching the root, and wrong indexes, sizes and paths refused.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/bytes/index.js';
import { auditPath, auditPaths, LicenseError, merkleRoot, rootFromAuditPath } from '../../../src/license/index.js';
import { thrown } from '../../support/index.js';

/** SHA-256 through node:crypto, not the project's facade. */
const H = (...parts: Uint8Array[]): Uint8Array => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
};

/** RFC 9162 §2.1.1, word for word: MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 ‖ d0), else split at k. */
function mth(d: readonly Uint8Array[]): Uint8Array {
  const n = d.length;
  if (n === 0) return H();
  if (n === 1) return H(Uint8Array.of(0), d[0]!);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return H(Uint8Array.of(1), mth(d.slice(0, k)), mth(d.slice(k)));
}

/** RFC 9162 §2.1.3.1: PATH(m, D[n]). */
function path(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  const n = d.length;
  if (n <= 1) return [];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4', '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c', '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
/** [leaf index (0-based), tree size, path]: the reference's inclusion proofs (its leaves are 1-based). */
const CT_PATHS: Array<[number, number, string[]]> = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

const leavesOf = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => Uint8Array.of(i, (i * 7) & 0xff, 0x5a));

function refusal(run: () => unknown): string | undefined {
  const error = thrown(run);
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(LicenseError);
  return (error as LicenseError).reason;
}

describe('merkleRoot', () => {
  it('of no leaves is SHA-256 of the empty string', () => {
    expect(toHex(merkleRoot([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it.each(CT_ROOTS.map((root, i) => [i + 1, root] as const))('of the reference\'s first %i leaves is its tree head, and the recursive definition\'s', (n, root) => {
    expect(toHex(mth(CT_LEAVES.slice(0, n)))).toBe(root);
    expect(toHex(merkleRoot(CT_LEAVES.slice(0, n)))).toBe(root);
  });

  it('equals the recursive definition for every size 1..100', () => {
    for (let n = 1; n <= 100; n++) expect(toHex(merkleRoot(leavesOf(n))), `size ${n}`).toBe(toHex(mth(leavesOf(n))));
  });
});

describe('audit paths', () => {
  it.each(CT_PATHS)('leaf %i of %i is the reference\'s inclusion proof', (index, size, expected) => {
    expect(auditPath(index, CT_LEAVES.slice(0, size)).map(toHex)).toEqual(expected);
    expect(toHex(rootFromAuditPath(index, size, CT_LEAVES[index]!, expected.map(fromHex)))).toBe(CT_ROOTS[size - 1]);
  });

  it('every leaf of every tree of 1..33 leaves: the path is RFC 9162\'s PATH and reaches the root', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = leavesOf(n);
      const root = toHex(mth(leaves));
      const all = auditPaths(leaves);
      for (let index = 0; index < n; index++) {
        const proof = auditPath(index, leaves);
        expect(proof.map(toHex), `leaf ${index} of ${n}`).toEqual(path(index, leaves).map(toHex));
        expect(all[index]!.map(toHex)).toEqual(proof.map(toHex));
        expect(toHex(rootFromAuditPath(index, n, leaves[index]!, proof)), `leaf ${index} of ${n}`).toBe(root);
      }
    }
  });

  it('a wrong leaf, index, sibling or order of siblings reaches another root or is refused (every leaf of trees 2..33)', () => {
    for (let n = 2; n <= 33; n++) {
      const leaves = leavesOf(n);
      const root = toHex(merkleRoot(leaves));
      for (let index = 0; index < n; index++) {
        const proof = auditPath(index, leaves);
        const outcomes = [
          () => rootFromAuditPath(index, n, Uint8Array.of(0xff), proof),
          () => rootFromAuditPath((index + 1) % n, n, leaves[index]!, proof),
          () => rootFromAuditPath(index, n, leaves[index]!, proof.map((hash, i) => (i === 0 ? H(hash) : hash))),
          ...(proof.length < 2 ? [] : [() => rootFromAuditPath(index, n, leaves[index]!, [proof[1]!, proof[0]!, ...proof.slice(2)])]),
        ];
        for (const [which, outcome] of outcomes.entries()) {
          const error = thrown(outcome);
          if (error === undefined) expect(toHex(outcome()), `case ${which}, leaf ${index} of ${n}`).not.toBe(root);
          else expect((error as LicenseError).reason).toBe('input');
        }
      }
    }
  });

  it('a tree size the path does not fit is refused (the size itself is bound by the signed record, not by the path)', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = leavesOf(n);
      for (let index = 0; index < n; index++) {
        const proof = auditPath(index, leaves);
        for (let size = index + 1; size <= n + 4; size++) {
          if (path(index, leavesOf(size)).length !== proof.length) expect(refusal(() => rootFromAuditPath(index, size, leaves[index]!, proof)), `leaf ${index}, size ${size}`).toBe('input');
        }
      }
    }
  });

  it.each<[string, () => unknown]>([
    ['an index past the tree', () => rootFromAuditPath(8, 8, CT_LEAVES[0]!, [])],
    ['a negative index', () => rootFromAuditPath(-1, 8, CT_LEAVES[0]!, [])],
    ['a fractional index', () => rootFromAuditPath(0.5, 8, CT_LEAVES[0]!, [])],
    ['a tree of no leaves', () => rootFromAuditPath(0, 0, CT_LEAVES[0]!, [])],
    ['a path one hash short', () => rootFromAuditPath(0, 8, CT_LEAVES[0]!, CT_PATHS[0]![2].slice(0, 2).map(fromHex))],
    ['a path one hash long', () => rootFromAuditPath(0, 8, CT_LEAVES[0]!, [...CT_PATHS[0]![2], CT_ROOTS[0]!].map(fromHex))],
    ['a hash of 31 bytes', () => rootFromAuditPath(2, 3, CT_LEAVES[2]!, [new Uint8Array(31)])],
    ['a path for a tree of one leaf', () => rootFromAuditPath(0, 1, CT_LEAVES[0]!, [new Uint8Array(32)])],
    ['auditPath of an index past the leaves', () => auditPath(3, CT_LEAVES.slice(0, 3))],
    ['auditPath of no leaves', () => auditPath(0, [])],
    ['merkleRoot of something that is not bytes', () => merkleRoot(['00'] as unknown as Uint8Array[])],
  ])('refuses %s with input', (_name, run) => {
    expect(refusal(run)).toBe('input');
  });

  it('a tree of one leaf has an empty path and its leaf hash as root', () => {
    expect(auditPath(0, [CT_LEAVES[1]!])).toEqual([]);
    expect(toHex(rootFromAuditPath(0, 1, CT_LEAVES[1]!, []))).toBe(toHex(merkleRoot([CT_LEAVES[1]!])));
  });
});
