// The card's protected information now lives in src/card (one codec for every backing); re-exported here
// for the client operations that seal it.
export {
  decodeProtectedInformation, encodeProtectedInformation, newProtectedInformation, ProtectedInformationError, wipeProtectedInformation, type ProtectedInformation,
} from '../card/index.js';
