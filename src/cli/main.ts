// The `vsc` command line: walks the command tree, prints help, and maps errors to the exit codes
// of DESIGN.md (0 ok, 2 usage, 3 refused by state, 4 authentication failed, 5 MUK mismatch, 1 other).
import { isMainThread } from 'node:worker_threads';
import { VscError, UsageError, ExitCode } from '../errors/index.js';
import { commandHelp, groupHelp, parseCommandOptions, type Command, type CommandGroup } from './command.js';
import { adminCommands, cardClientCommands, cardEmulateCommand, demoCommand, dongleGroup, keyfileGroup, licenseGroup, rentalGroup, serverInitCommand, serverStartCommand, validatorGroup, vendorGroup } from './commands/index.js';

export const ROOT: CommandGroup = {
  kind: 'group',
  name: 'vsc',
  summary: 'Virtual smart cards: software cards served to PC/SC applications through a virtual reader.',
  children: [
    { kind: 'group', name: 'card', summary: 'use a virtual card on this machine', children: [cardEmulateCommand, ...cardClientCommands] },
    { kind: 'group', name: 'server', summary: 'run a VSC server', children: [serverInitCommand, serverStartCommand] },
    { kind: 'group', name: 'admin', summary: 'administer the cards of a VSC server', children: adminCommands },
    dongleGroup,
    vendorGroup,
    keyfileGroup,
    validatorGroup,
    rentalGroup,
    licenseGroup,
    demoCommand,
  ],
};

function reportError(error: unknown, debug: boolean): number {
  if (error instanceof VscError) {
    console.error(`vsc: ${error.message}`);
    if (error instanceof UsageError) console.error('Run with --help for usage.');
    if (debug && error.stack !== undefined) console.error(error.stack);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  console.error(`vsc: unexpected error: ${message.split('\n')[0]}`);
  if (debug && error instanceof Error && error.stack !== undefined) console.error(error.stack);
  return ExitCode.other;
}

/** Runs the command line; returns the exit code. Never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  // Whatever `vsc` creates (data directories, databases, state, sockets) is the user's alone; the
  // places that matter also set their modes explicitly. A worker thread may not change the umask.
  if (isMainThread) process.umask(0o077);
  const args = [...argv];
  const debug = args.includes('--debug');
  let node: Command | CommandGroup = ROOT;
  let path = 'vsc';
  try {
    while (node.kind === 'group') {
      const next = args[0];
      if (next === undefined || next === '--help' || next === '-h' || next === 'help') {
        console.log(groupHelp(path, node));
        return next === undefined ? ExitCode.usage : ExitCode.ok;
      }
      if (next === '--version') {
        console.log('vsc 0.1.0');
        return ExitCode.ok;
      }
      const child: Command | CommandGroup | undefined = node.children.find((c) => c.name === next);
      if (child === undefined) {
        const names = node.children.map((c) => c.name).join(', ');
        throw new UsageError(`unknown command "${path} ${next}" (expected one of: ${names})`);
      }
      args.shift();
      node = child;
      path = `${path} ${child.name}`;
    }
    const options = parseCommandOptions(node, args);
    if (options['help'] === true) {
      console.log(commandHelp(path, node));
      return ExitCode.ok;
    }
    return await node.run(options);
  } catch (error) {
    return reportError(error, debug);
  }
}
