import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isAetherError } from '@aether/core/errors';
import { inspectJournal } from '@aether/core/runtime/journal/index';
import { resolveOrReport } from './config-commands.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Io } from './exit.js';

interface InspectOpts {
  stateDir?: string;
  config?: string;
  json?: boolean;
}

/**
 * `aether journal inspect`: reads `<state_dir>/journal` directly, so it works with no mount
 * running, and changes nothing (a torn tail is reported, not cut). `aether journal flush` talks
 * to a running mount and comes with the control socket.
 */
export function addJournalCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const journal = program.command('journal').description('look at the write-ahead journal');

  journal
    .command('inspect')
    .description('print the journal as JSON: segments, first/last/committed sequence, pending entries and bytes, oldest age, torn tail')
    .option('--state-dir <dir>', 'state directory (default: state_dir of the configuration)')
    .option('--config <file>', 'configuration file, for state_dir (default: $AFS_AETHER_CONFIG, else ./aether.toml)')
    .option('--json', 'print JSON (the output is always JSON)')
    .action(async (opts: InspectOpts) => {
      let stateDir = opts.stateDir;
      if (stateDir === undefined) {
        const r = resolveOrReport({ config: opts.config }, io);
        if (typeof r === 'number') return setExit(r);
        stateDir = r.config.state_dir;
      }
      try {
        const report = await inspectJournal({ stateDir: resolve(stateDir) });
        io.out(`${JSON.stringify(report, null, 2)}\n`);
        setExit(EXIT_OK);
      } catch (err) {
        // A directory that is not there is the user's mistake; a damaged journal is a finding.
        if (isAetherError(err, 'JOURNAL_NOT_FOUND')) throw new UsageError(err.message);
        if (!isAetherError(err)) throw err;
        io.err(`aether: ${err.message} (${err.code})\n`);
        setExit(EXIT_FAILURE);
      }
    });
}
