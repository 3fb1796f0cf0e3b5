// Implementation authentication on the server ([0041]-[0048], DESIGN "Keys and secrets"): the
// master-key and/or keyfile proofs over (ri1, ri2, serial), as the deployment demands.
import { wipe } from '../bytes/index.js';
import { OperationRefused, keyfileProof, keyfileSecretFor, masterProof, verifyProof, type ProofBase } from '../vsc-protocol/index.js';
import type { ServerKeys } from './server-data.js';
import type { ImplementationProofs } from './server-options.js';

/** Throws OperationRefused('implementation') unless the proof carries every proof the deployment demands. */
export function checkImplementation(keys: ServerKeys, demanded: ImplementationProofs, proof: ProofBase, serial: string, ri1: Uint8Array): void {
  const { ri2, masterProof: master, installId, keyfileProof: keyfile } = proof;
  const needMaster = demanded !== 'keyfile';
  const needKeyfile = demanded !== 'master';
  if (needMaster && (master === undefined || !verifyProof(masterProof(keys.masterKey, ri1, ri2, serial), master))) {
    throw new OperationRefused('implementation', 'this client could not prove it is a genuine implementation (master key)');
  }
  if (needKeyfile) {
    if (installId === undefined || keyfile === undefined) throw new OperationRefused('implementation', 'this deployment requires a keyfile; install one with --keyfile');
    const as1 = keyfileSecretFor(keys.keyfileSecret, installId);
    const expected = keyfileProof(as1, ri1, ri2, serial);
    wipe(as1);
    if (!verifyProof(expected, keyfile)) throw new OperationRefused('implementation', 'this client could not prove it is a genuine implementation (keyfile)');
  }
}
