// HOST:PORT as every command-line flag and bridge takes it (--vpcd, --listen, --metrics): a host name,
// an IPv4 address or a bracketed IPv6 address, a colon, and a decimal port; one parser for all of them.
import { UsageError } from '../errors/index.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface HostPortRules {
  /** Port 0 (listen on any free port) is allowed; otherwise ports start at 1. */
  readonly anyPort?: boolean;
  /** Named in the error, e.g. `--listen`. */
  readonly what?: string;
  /** An example shown in the error. */
  readonly example?: string;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):([0-9]{1,5})$/;

/** Parses HOST:PORT; a malformed one is a UsageError (exit 2) that quotes what came in. */
export function parseHostPort(text: string, rules: HostPortRules = {}): HostPort {
  const min = rules.anyPort === true ? 0 : 1;
  const match = HOST_PORT.exec(text.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port < min || port > 65535) {
    const example = rules.example === undefined ? '' : ` (e.g. ${rules.example})`;
    throw new UsageError(`${rules.what === undefined ? '' : `${rules.what}: `}expected HOST:PORT with a port in ${min}..65535${example}, got "${text}"`);
  }
  return Object.freeze({ host: match[1] ?? match[2] ?? '', port });
}
