// The Merkle tree over a backup's leaves (RFC 6962 §2.1, as RFC 9162 §2.1 restates it): one card signature covers every
// firm item of a backup, and each licensor gets its own leaf with an audit path, so it sees only its own licenses
// (Wibu 000 §2.4) and still checks that the card signed them (000 §2.6).
//   leaf hash  SHA-256(0x00 ‖ d)        node  SHA-256(0x01 ‖ left ‖ right), split at the largest power of two < n
//   empty tree SHA-256("")
// Built bottom-up: pairing the nodes of one level and carrying a last lone node up unchanged gives exactly the tree of
// the recursive definition (RFC 9162 §2.1.1), in linear time, and every audit path of a backup from one build.
import { SHA256_LENGTH, sha256 } from '../../crypto/index.js';
import { LicenseError } from '../license-error.js';

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
/** Indexes and sizes stay exact JavaScript integers whose bit operations hold (below 2^31). */
const MAX_TREE_SIZE = 2 ** 31 - 1;

const input = (message: string): LicenseError => new LicenseError('input', `backup tree: ${message}`);

export function merkleLeafHash(data: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, data);
}

export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, left, right);
}

function checkLeaves(leaves: readonly Uint8Array[]): void {
  if (!Array.isArray(leaves) || leaves.length > MAX_TREE_SIZE || leaves.some((leaf) => !(leaf instanceof Uint8Array))) {
    throw input(`expected a list of at most ${MAX_TREE_SIZE} byte arrays`);
  }
}

/** Every level of the tree, leaf hashes first, the root's level (one node) last; no levels for an empty tree. */
function levels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  checkLeaves(leaves);
  if (leaves.length === 0) return [];
  const out: Uint8Array[][] = [leaves.map(merkleLeafHash)];
  for (let level = out[0]!; level.length > 1; ) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(merkleNodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    out.push(next);
    level = next;
  }
  return out;
}

/** MTH(D[n]) of RFC 9162 §2.1.1. */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  const all = levels(leaves);
  return all.length === 0 ? sha256() : all[all.length - 1]![0]!;
}

function pathIn(all: readonly Uint8Array[][], index: number): Uint8Array[] {
  const path: Uint8Array[] = [];
  let at = index;
  for (const level of all.slice(0, -1)) {
    const sibling = at ^ 1;
    // A last lone node has no sibling on this level: it is carried up, and the path gains nothing.
    if (sibling < level.length) path.push(level[sibling]!);
    at >>= 1;
  }
  return path;
}

/** PATH(index, D[n]) of RFC 9162 §2.1.3.1: the sibling hashes from the leaf up. */
export function auditPath(index: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  checkLeaves(leaves);
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw input(`expected a leaf index in 0..${leaves.length - 1}, got ${String(index)}`);
  return pathIn(levels(leaves), index);
}

/** The audit path of every leaf, from one build of the tree (a backup hands each licensor its own). */
export function auditPaths(leaves: readonly Uint8Array[]): Uint8Array[][] {
  const all = levels(leaves);
  return leaves.map((_, index) => pathIn(all, index));
}

/** How many hashes the audit path of leaf `index` in a tree of `treeSize` leaves has (both checked by the caller). */
export function auditPathLength(index: number, treeSize: number): number {
  let length = 0;
  for (let m = index, n = treeSize; n > 1; length += 1) {
    let k = 1;
    while (k * 2 < n) k *= 2;
    if (m < k) n = k;
    else [m, n] = [m - k, n - k];
  }
  return length;
}

/**
 * The root that leaf data `leaf` at `index` in a tree of `treeSize` leaves reaches along `path` (RFC 9162 §2.1.3.2);
 * the caller compares it with the signed root. A path of the wrong length for index and size, a hash that is not 32
 * bytes, an index outside the tree: LicenseError 'input'.
 */
export function rootFromAuditPath(index: number, treeSize: number, leaf: Uint8Array, path: readonly Uint8Array[]): Uint8Array {
  if (!Number.isInteger(treeSize) || treeSize < 1 || treeSize > MAX_TREE_SIZE) throw input(`expected a tree size in 1..${MAX_TREE_SIZE}, got ${String(treeSize)}`);
  if (!Number.isInteger(index) || index < 0 || index >= treeSize) throw input(`expected a leaf index in 0..${treeSize - 1}, got ${String(index)}`);
  if (!(leaf instanceof Uint8Array)) throw input('expected the leaf data as bytes');
  if (!Array.isArray(path) || path.some((hash) => !(hash instanceof Uint8Array) || hash.length !== SHA256_LENGTH)) throw input(`expected the audit path as ${SHA256_LENGTH}-byte hashes`);
  let fn = index;
  let sn = treeSize - 1;
  let root = merkleLeafHash(leaf);
  for (const sibling of path) {
    if (sn === 0) throw input(`expected an audit path of fewer than ${path.length} hashes for leaf ${index} of ${treeSize}`);
    if ((fn & 1) === 1 || fn === sn) {
      root = merkleNodeHash(sibling, root);
      // A right edge node: the levels where it has no sibling are skipped.
      while ((fn & 1) === 0 && fn !== 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      root = merkleNodeHash(root, sibling);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn !== 0) throw input(`expected an audit path of more than ${path.length} hashes for leaf ${index} of ${treeSize}`);
  return root;
}
