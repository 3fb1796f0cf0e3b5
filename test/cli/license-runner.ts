// Runs `vsc license ...` (src/cli/commands/license.ts) from the sources: in-process for the tests (runLicenseCommand),
// or as a program of its own through tsx for the services, which run until SIGTERM
// (`node --import tsx test/cli/license-runner.ts serve --data ...`, `... hub serve --data ...`).
import { pathToFileURL } from 'node:url';
import { commandHelp, groupHelp, parseCommandOptions, type Command, type CommandGroup } from '../../src/cli/command.js';
import { licenseGroup } from '../../src/cli/commands/license.js';
import { ExitCode, UsageError, VscError } from '../../src/errors/index.js';

const LICENSE: CommandGroup = licenseGroup;

/** `vsc license ...args`: the exit code; errors printed as main() prints them. */
export async function runLicenseCommand(args: readonly string[]): Promise<number> {
  let node: Command | CommandGroup = LICENSE;
  let path = 'vsc license';
  const rest = [...args];
  try {
    while (node.kind === 'group') {
      const next = rest.shift();
      if (next === undefined || next === '--help') {
        console.log(groupHelp(path, node));
        return next === undefined ? ExitCode.usage : ExitCode.ok;
      }
      const child: Command | CommandGroup | undefined = node.children.find((candidate) => candidate.name === next);
      if (child === undefined) throw new UsageError(`unknown command "${path} ${next}"`);
      node = child;
      path = `${path} ${child.name}`;
    }
    const options = parseCommandOptions(node, rest);
    if (options['help'] === true) {
      console.log(commandHelp(path, node));
      return ExitCode.ok;
    }
    return await node.run(options);
  } catch (error) {
    console.error(`vsc: ${(error as Error).message}`);
    return error instanceof VscError ? error.exitCode : ExitCode.other;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.umask(0o077);
  process.exitCode = await runLicenseCommand(process.argv.slice(2));
}
