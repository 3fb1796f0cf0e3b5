// The base of every error the project throws on purpose: a stable code, and the exit code the CLI uses.

/** CLI exit codes fixed by DESIGN.md. */
export const ExitCode = {
  ok: 0,
  other: 1,
  usage: 2,
  refusedByState: 3,
  authenticationFailed: 4,
  mukMismatch: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface VscErrorOptions {
  cause?: unknown;
  exitCode?: ExitCode;
}

export class VscError extends Error {
  override readonly name: string = 'VscError';
  /** Stable, machine-readable identifier such as `apdu.wrong-length`. */
  readonly code: string;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, options: VscErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.exitCode = options.exitCode ?? ExitCode.other;
  }
}

/** Bad command-line or API usage: wrong flag, malformed value. */
export class UsageError extends VscError {
  override readonly name = 'UsageError';
  constructor(message: string, options: Omit<VscErrorOptions, 'exitCode'> = {}) {
    super('usage', message, { ...options, exitCode: ExitCode.usage });
  }
}
