// The shape of the `vsc` command tree: groups of commands, each with typed options and help text.
import { parseArgs } from 'node:util';
import { UsageError } from '../errors/index.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in help, e.g. HOST:PORT. */
  value?: string;
  description: string;
  short?: string;
  default?: string | boolean;
  /** May be given more than once; the value is then the list of all of them. */
  multiple?: boolean;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  kind: 'command';
  name: string;
  summary: string;
  /** Extra paragraphs shown by --help. */
  details?: string;
  options: Record<string, OptionSpec>;
  run(options: OptionValues): Promise<number>;
}

export interface CommandGroup {
  kind: 'group';
  name: string;
  summary: string;
  children: (Command | CommandGroup)[];
}

/** Options every command accepts. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  debug: { type: 'boolean', description: 'print stack traces of errors' },
};

export function parseCommandOptions(command: Command, argv: string[]): OptionValues {
  const specs = { ...COMMON_OPTIONS, ...command.options };
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [
      name,
      {
        type: spec.type,
        ...(spec.short === undefined ? {} : { short: spec.short }),
        ...(spec.default === undefined ? {} : { default: spec.default }),
        ...(spec.multiple === true ? { multiple: true } : {}),
      },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return values as OptionValues;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // parseArgs' own messages are clear ("Unknown option '--x'"); keep the first line only.
    throw new UsageError(String((error as Error).message).split('\n')[0] ?? 'invalid arguments', { cause: error });
  }
}

/** A string option's value, or undefined when it was not given. */
export function optionText(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A repeatable option's values: `--right print --right audio`. */
export function optionList(values: OptionValues, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
}

/** `--json`, the machine-readable output every command offers. */
export const JSON_OPTION: Record<string, OptionSpec> = { json: { type: 'boolean', description: 'machine-readable output' } };

/** Prints a command's result: `event` as one JSON line with --json, else the line for people. */
export const say = (values: OptionValues) => (event: Record<string, unknown>, line: string): void => console.log(values['json'] === true ? JSON.stringify(event) : line);

/** A required string option, or a usage error naming it. */
export function requireOption(values: OptionValues, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.length === 0) throw new UsageError(`--${name} is required`);
  return value;
}

export function commandHelp(path: string, command: Command): string {
  const specs = { ...command.options, ...COMMON_OPTIONS };
  const rows = Object.entries(specs).map(([name, spec]) => {
    const flag = `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}${spec.value === undefined ? '' : ` ${spec.value}`}`;
    const fallback = spec.default === undefined || spec.type === 'boolean' ? '' : ` (default ${String(spec.default)})`;
    return `  ${flag.padEnd(30)} ${spec.description}${fallback}`;
  });
  return [`Usage: ${path} [options]`, '', command.summary, ...(command.details === undefined ? [] : ['', command.details]), '', 'Options:', ...rows].join('\n');
}

export function groupHelp(path: string, group: CommandGroup): string {
  const rows = group.children.map((child) => `  ${child.name.padEnd(12)} ${child.summary}`);
  return [`Usage: ${path} <command> [options]`, '', group.summary, '', 'Commands:', ...rows, '', `Run "${path} <command> --help" for the options of a command.`].join('\n');
}
