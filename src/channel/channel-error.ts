// The one error type of the protected channel: handshake, transport and WebSocket session failures.
import { VscError, type VscErrorOptions } from '../errors/index.js';

/**
 * Stable codes:
 * - `channel.handshake`: a handshake message did not verify (wrong server key, tampering).
 * - `channel.decrypt`: a transport message did not verify (replayed, reordered, truncated, modified).
 * - `channel.oversized`: a message or payload beyond the 65535-byte Noise limit.
 * - `channel.state`: an operation called out of order (read before write, split before the end).
 * - `channel.key`: a key of the wrong length or shape.
 * - `channel.nonce`: the 2^64-1 message counter of a cipher state is used up.
 * - `channel.protocol`: a peer broke the framing (text frame, unexpected payload).
 * - `channel.timeout`, `channel.closed`, `channel.connect`: session life cycle.
 */
export const CHANNEL_ERROR_CODES = [
  'channel.handshake',
  'channel.decrypt',
  'channel.oversized',
  'channel.state',
  'channel.key',
  'channel.nonce',
  'channel.protocol',
  'channel.timeout',
  'channel.closed',
  'channel.connect',
] as const;
export type ChannelErrorCode = (typeof CHANNEL_ERROR_CODES)[number];

export class ChannelError extends VscError {
  override readonly name = 'ChannelError';
  declare readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string, options: VscErrorOptions = {}) {
    super(code, message, options);
  }
}
