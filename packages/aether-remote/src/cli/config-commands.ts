import type { Command } from 'commander';
import { ConfigError, findSetting, renderSettingPage, renderShowJson, renderShowText, resolveConfigDetailed, type ResolvedConfig } from '@aether/core';
import { EXIT_OK, EXIT_USAGE, UsageError, type Io } from './exit.js';

interface ConfigOpts {
  config?: string;
  json?: boolean;
}

/** Resolves the configuration layers, or prints the problems and returns the exit code. */
export function resolveOrReport(opts: ConfigOpts, io: Io): ResolvedConfig | number {
  try {
    const r = resolveConfigDetailed({ configPath: opts.config });
    for (const w of r.warnings) io.err(`aether: warning: ${w}\n`);
    return r;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.lines) io.err(`aether: ${line}\n`);
    io.err(`aether: configuration invalid (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'})\n`);
    return EXIT_USAGE;
  }
}

/** `aether config show|validate|explain`: work without a running mount, on the same layers. */
export function addConfigCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const config = program.command('config').description('inspect and check the configuration');

  config
    .command('show')
    .description('print the resolved configuration and the layer each value came from')
    .option('--config <file>', 'configuration file (default: $AFS_AETHER_CONFIG, else ./aether.toml)')
    .option('--json', 'print the resolved values alone, shaped like aether.toml')
    .action((opts: ConfigOpts) => {
      const r = resolveOrReport(opts, io);
      if (typeof r === 'number') return setExit(r);
      io.out(opts.json ? renderShowJson(r.config, r.exact) : renderShowText(r));
      setExit(EXIT_OK);
    });

  config
    .command('validate')
    .description('check the configuration; exit 0 when valid, 2 with one line per problem otherwise')
    .option('--config <file>', 'configuration file (default: $AFS_AETHER_CONFIG, else ./aether.toml)')
    .action((opts: ConfigOpts) => {
      const r = resolveOrReport(opts, io);
      if (typeof r === 'number') return setExit(r);
      io.out(`configuration is valid (file: ${r.file ?? 'none'})\n`);
      setExit(EXIT_OK);
    });

  config
    .command('explain')
    .description("print a setting's reference page (NAME: an AFS_AETHER_* variable or a TOML key)")
    .argument('<name>', 'env var, TOML key (backpressure.journal_max_age_seconds) or override field')
    .action((name: string) => {
      const s = findSetting(name);
      if (!s) throw new UsageError(`unknown setting '${name}' (give an AFS_AETHER_* variable or a TOML key; see docs/config/README.md)`);
      io.out(renderSettingPage(s));
      setExit(EXIT_OK);
    });
}
