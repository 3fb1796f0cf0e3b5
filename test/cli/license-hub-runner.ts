// Runs the restore hub's commands (src/cli/commands/license-hub.ts) as `vsc license hub ...` will once the `license`
// group lists them: in-process for the tests (runHubCommand), or as a program of its own through tsx for `serve`,
// which runs until SIGTERM (`node --import tsx test/cli/license-hub-runner.ts hub serve --data ...`).
import { pathToFileURL } from 'node:url';
import { commandHelp, groupHelp, parseCommandOptions, type Command, type CommandGroup } from '../../src/cli/command.js';
import { licenseHubGroup } from '../../src/cli/commands/license-hub.js';
import { ExitCode, UsageError, VscError } from '../../src/errors/index.js';

const LICENSE: CommandGroup = { kind: 'group', name: 'license', summary: 'license containers', children: [licenseHubGroup] };

/** `vsc license ...args`: the exit code; errors printed as main() prints them. */
export async function runHubCommand(args: readonly string[]): Promise<number> {
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
  process.exitCode = await runHubCommand(process.argv.slice(2));
}
