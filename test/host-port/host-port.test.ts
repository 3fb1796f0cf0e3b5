// The one HOST:PORT parser of --vpcd, --listen and --metrics: accepted forms, and a table of malformed
// ones, each a UsageError (exit 2) that names the flag and quotes what came in.
import { describe, expect, it } from 'vitest';
import { ExitCode, UsageError } from '../../src/errors/index.js';
import { parseHostPort } from '../../src/host-port/index.js';

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:35963', '127.0.0.1', 35963],
    ['localhost:1', 'localhost', 1],
    ['[::1]:7443', '::1', 7443],
    ['[::]:0080', '::', 80],
    ['[fe80::1:2]:443', 'fe80::1:2', 443],
    ['[::ffff:127.0.0.1]:80', '::ffff:127.0.0.1', 80],
    ['0.0.0.0:9464', '0.0.0.0', 9464],
    [' host.example-1:65535 ', 'host.example-1', 65535],
  ])('reads %s', (text, host, port) => {
    expect(parseHostPort(text)).toEqual({ host, port });
  });

  it('takes port 0 (any free port) only where the rules allow it', () => {
    expect(parseHostPort('127.0.0.1:0', { anyPort: true })).toEqual({ host: '127.0.0.1', port: 0 });
    expect(() => parseHostPort('127.0.0.1:0')).toThrow('expected HOST:PORT with a port in 1..65535, got "127.0.0.1:0"');
  });

  it('refuses a value that is not a string with a UsageError, not a TypeError', () => {
    expect(() => parseHostPort(undefined as never)).toThrow(UsageError);
    expect(() => parseHostPort(8080 as never)).toThrow('expected HOST:PORT with a port in 1..65535, got "8080"');
  });

  it.each(['', '127.0.0.1', ':80', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:99999', '::1:80', '[::1]80', 'host:80:90', 'ho st:80', 'host:-1', 'host:0x10', '[]:80', '[:]:80', '[1.2.3.4]:80', '[::1::2]:80', '[::g]:80', '999.1.1.1:80', '1.2.3:80', '127.0.0.1:123456'])(
    'refuses %j with a UsageError naming the flag',
    (text) => {
      const error = (() => {
        try {
          parseHostPort(text, { anyPort: true, what: '--listen', example: '127.0.0.1:9464' });
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).exitCode).toBe(ExitCode.usage);
      expect((error as Error).message).toBe(`--listen: expected HOST:PORT with a port in 0..65535 (e.g. 127.0.0.1:9464), got "${text}"`);
    },
  );
});
