// HOST:PORT as every command-line flag and bridge takes it (--vpcd, --listen, --metrics): a host name,
// an IPv4 address or a bracketed IPv6 address, a colon, and a decimal port; one parser for all of them.
import { isIPv4, isIPv6 } from 'node:net';
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

/**
 * A bracketed host must be an IPv6 address; an unbracketed one of digits and dots must be an IPv4
 * address (999.1.1.1 would otherwise go to the resolver as a name and fail later, far from the flag).
 */
function validHost(bracketed: string | undefined, name: string | undefined): boolean {
  if (bracketed !== undefined) return isIPv6(bracketed);
  return name !== undefined && (!/^[0-9.]+$/.test(name) || isIPv4(name));
}

/** Parses HOST:PORT; a malformed one is a UsageError (exit 2) that quotes what came in. */
export function parseHostPort(text: string, rules: HostPortRules = {}): HostPort {
  const min = rules.anyPort === true ? 0 : 1;
  const match = typeof text === 'string' ? HOST_PORT.exec(text.trim()) : null;
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port < min || port > 65535 || !validHost(match[1], match[2])) {
    const example = rules.example === undefined ? '' : ` (e.g. ${rules.example})`;
    throw new UsageError(`${rules.what === undefined ? '' : `${rules.what}: `}expected HOST:PORT with a port in ${min}..65535${example}, got "${String(text)}"`);
  }
  return Object.freeze({ host: match[1] ?? match[2] ?? '', port });
}
