import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, resolveConfigDetailed, type ConfigOverrides, type ResolvedConfig } from '../../src/config/index.js';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'aether-config-'));
}

/** Resolves with an optional TOML text (written to a temp aether.toml), env and overrides; never reads the real environment. */
export function resolveWith(opts: { toml?: string; env?: Record<string, string>; overrides?: ConfigOverrides } = {}): ResolvedConfig {
  const cwd = tempDir();
  if (opts.toml !== undefined) writeFileSync(join(cwd, 'aether.toml'), opts.toml);
  return resolveConfigDetailed({ cwd, env: opts.env ?? {}, overrides: opts.overrides ?? {} });
}

/** The problem lines of a resolution that must fail. */
export function problemsOf(opts: Parameters<typeof resolveWith>[0]): string[] {
  try {
    resolveWith(opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.lines;
    throw err;
  }
  throw new Error('expected a ConfigError, but the configuration resolved');
}
