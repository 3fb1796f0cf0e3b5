// The one error a malformed operation message raises, on either side of the channel: the session
// that carried it is closed and the peer is told "protocol".
import { ExitCode, VscError } from '../errors/index.js';

export class ProtocolError extends VscError {
  override readonly name = 'ProtocolError';
  constructor(message: string) {
    super('protocol.message', message, { exitCode: ExitCode.other });
  }
}
