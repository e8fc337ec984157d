import { Command, CommanderError } from 'commander';
import { addConfigCommands } from './config-commands.js';
import { addControlCommands } from './control-commands.js';
import { addJournalCommands } from './journal-commands.js';
import { addStoreCommands } from './store-commands.js';
import { addHubCommand } from './hub-command.js';
import { addMountCommand } from './mount-command.js';
import { addSyncWait } from './sync-wait.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, processIo, UsageError, type Io } from './exit.js';

/** Runs the `aether` command line; returns the exit code. Bad input is one line on stderr. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode = EXIT_OK;
  const program = new Command('aether')
    .description('Aether: a journaled, write-back caching file tree kept in sync through a hub')
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(`aether: ${s.replace(/^error: /, '')}`),
    });
  // An empty value is never meaningful (a path, an address, a token): '' must not silently mean
  // "unset" or the working directory.
  program.hook('preAction', (_program, action) => {
    for (const o of action.options) {
      if (action.getOptionValue(o.attributeName()) === '') throw new UsageError(`${o.long ?? o.flags}: must not be empty`);
    }
    action.registeredArguments.forEach((a, i) => {
      if (action.processedArgs[i] === '') throw new UsageError(`${a.name().toUpperCase()}: must not be empty`);
    });
  });
  const setExit = (code: number): void => {
    exitCode = code;
  };
  addConfigCommands(program, io, setExit);
  addJournalCommands(program, io, setExit);
  addStoreCommands(program, io, setExit);
  addControlCommands(program, io, setExit);
  addMountCommand(program, io, setExit);
  addSyncWait(program, io, setExit);
  addHubCommand(program, io, setExit);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successes; every other parse problem is a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      io.err(`aether: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`aether: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}
