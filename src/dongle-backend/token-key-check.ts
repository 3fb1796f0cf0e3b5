// What the issuing authority demands of a card's key object on a token before it attests that the key is out of
// the card owner's reach (patent 003 [0096]: the vendor trusts the card "to avoid releasing the private keying
// material"; DESIGN.md "Software rental", trust model). The attributes are PKCS#11 v2.40 §4.9's common private key
// attributes: a key generated on the token (CKA_LOCAL) that is and always was unexportable (CKA_SENSITIVE,
// CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE) has never existed anywhere else.
import type { CardKeyFacts } from './dongle.js';

type Flag = 'sensitive' | 'extractable' | 'neverExtractable' | 'local';

interface Rule {
  readonly flag: Flag;
  readonly attribute: string;
  readonly required: boolean;
  /** Why the other value is refused. */
  readonly because: string;
  /** An import the authority made itself cannot be CKA_LOCAL, and tokens mark it never-extractable false. */
  readonly waivedForOwnImport: boolean;
}

const RULES: readonly Rule[] = [
  { flag: 'sensitive', attribute: 'CKA_SENSITIVE', required: true, because: 'the token would reveal the key\'s value', waivedForOwnImport: false },
  { flag: 'extractable', attribute: 'CKA_EXTRACTABLE', required: false, because: 'the key could leave the token wrapped under another key', waivedForOwnImport: false },
  { flag: 'neverExtractable', attribute: 'CKA_NEVER_EXTRACTABLE', required: true, because: 'the key was extractable once, so a copy may exist', waivedForOwnImport: true },
  {
    flag: 'local', attribute: 'CKA_LOCAL', required: true, waivedForOwnImport: true,
    because: 'the key was imported, not generated on the token, so its value existed outside it; an imported (universal) key is attested only at init, by the authority that imported it',
  },
];

export interface TokenKeyCheck {
  /** The authority imported this key itself a moment ago (`vsc dongle init --universal-key ... --attestation-out`). */
  readonly importedHere?: boolean;
}

/**
 * Every reason the key object fails, each naming its attribute ("CKA_EXTRACTABLE is true (must be false: ...)");
 * empty when the authority may attest it.
 */
export function tokenKeyProblems(facts: CardKeyFacts, check: TokenKeyCheck = {}): string[] {
  const problems: string[] = [];
  if (!facts.ed25519) problems.push('CKA_EC_PARAMS does not name Ed25519 (the card signs with Ed25519 only)');
  for (const rule of RULES) {
    if (rule.waivedForOwnImport && check.importedHere === true) continue;
    const value = facts[rule.flag];
    if (value !== rule.required) problems.push(`${rule.attribute} is ${String(value)} (must be ${String(rule.required)}: otherwise ${rule.because})`);
  }
  return problems;
}
