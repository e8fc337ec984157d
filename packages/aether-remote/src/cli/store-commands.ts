import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { isAetherError } from '@aether/core/errors';
import { inspectJournal } from '@aether/core/runtime/journal/index';
import { verifyStore, type StoreVerifyReport } from '@aether/core/store/verify';
import { resolveOrReport } from './config-commands.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Io } from './exit.js';

interface VerifyOpts {
  stateDir?: string;
  data?: string;
  config?: string;
  json?: boolean;
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * `aether store verify`: reads every chunk of a mount's store (`<state_dir>/store`) or a hub's
 * data directory and checks it against its SHA-256. Reads do not check (it would halve sequential
 * reads), so this is how a flipped bit on the disk is found. Exit 0 when all are intact, 1 when
 * any is damaged (each named with the files it belongs to), 2 for bad input.
 */
export function addStoreCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const store = program.command('store').description('look after the store of committed contents');

  store
    .command('verify')
    .description("check every chunk against its SHA-256; name the files of any damaged one (safe while the mount or hub runs)")
    .option('--state-dir <dir>', "a mount's state directory (default: state_dir of the configuration)")
    .option('--data <dir>', "a hub's data directory, instead of a mount's state directory")
    .option('--config <file>', 'configuration file, for state_dir (default: $AFS_AETHER_CONFIG, else ./aether.toml)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: VerifyOpts) => {
      if (opts.data !== undefined && opts.stateDir !== undefined) throw new UsageError('--data and --state-dir name different stores: give one');
      let dir: string;
      let committedSeq: number | undefined;
      if (opts.data !== undefined) dir = resolve(opts.data);
      else {
        let stateDir = opts.stateDir;
        if (stateDir === undefined) {
          const r = resolveOrReport({ config: opts.config }, io);
          if (typeof r === 'number') return setExit(r);
          stateDir = r.config.state_dir;
        }
        // A bridge mount's committed contents are its replica of the hub (`<state_dir>/replica`).
        const local = join(resolve(stateDir), 'store');
        const replica = join(resolve(stateDir), 'replica');
        dir = !existsSync(join(local, 'meta.sqlite')) && existsSync(join(replica, 'meta.sqlite')) ? replica : local;
        // Local mode: the journal says how far the store must be (a damaged journal is journal inspect's to report).
        if (dir === local) committedSeq = await inspectJournal({ stateDir: resolve(stateDir) }).then((j) => j.committed_seq, () => undefined);
      }
      let report: StoreVerifyReport;
      try {
        report = await verifyStore(dir, { committedSeq });
      } catch (err) {
        if (isAetherError(err, 'STORE_OPEN_FAILED')) throw new UsageError(err.message);
        if (!isAetherError(err)) throw err;
        io.err(`aether: ${err.message} (${err.code})\n`);
        return setExit(EXIT_FAILURE);
      }
      const unused = report.damagedUnused > 0 ? ` (${report.damagedUnused} damaged chunk${report.damagedUnused === 1 ? '' : 's'} no file uses any more: nothing lost, reclaim drops them)` : '';
      if (opts.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        if (report.database.length > 0) io.out(`aether: store ${dir}: its database is damaged: ${report.database.slice(0, 3).join('; ')}${report.database.length > 3 ? '; …' : ''}\n`);
        if (report.damaged.length === 0) io.out(`aether: store ${dir}: ${report.chunks} chunks (${mib(report.bytes)}) checked, ${unused ? `no file damaged${unused}` : 'all intact'}\n`);
        else io.out(`aether: store ${dir}: ${report.damaged.length} of ${report.chunks} chunks damaged${unused}\n`);
        for (const d of report.damaged) {
          io.out(`  chunk ${d.hash} (${d.length} bytes at ${d.offset} in ${d.pack}): ${d.problem}; ${d.files.length > 0 ? `in ${d.files.join(', ')}` : 'in no file'}\n`);
        }
      }
      setExit(report.damaged.length === 0 && report.database.length === 0 ? EXIT_OK : EXIT_FAILURE);
    });
}
