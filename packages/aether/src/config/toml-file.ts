import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ConfigError } from './errors.js';
import { CONFIG_PATH_ENV } from './schema/index.js';
import { rawTomlValues } from './toml-raw.js';

export interface TomlFile {
  /** The path as the user named it (used in messages). */
  path: string;
  doc: Record<string, unknown>;
  /** Raw value text by dotted key, for checks TOML's parser cannot make (such as "decimal digits only"). */
  raw: Map<string, string>;
}

/**
 * Picks the configuration file: `--config FILE`, else `AFS_AETHER_CONFIG`, else `./aether.toml`
 * when it exists. A named file must exist; the implicit one is optional.
 */
export function locateConfigFile(configPath: string | undefined, env: Record<string, string | undefined>, cwd: string): { path: string; named: string } | undefined {
  if (configPath !== undefined && configPath !== '') return { path: configPath, named: '--config' };
  const fromEnv = env[CONFIG_PATH_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, named: CONFIG_PATH_ENV };
  const implicit = resolve(cwd, 'aether.toml');
  return existsSync(implicit) ? { path: 'aether.toml', named: 'default' } : undefined;
}

export function readTomlFile(path: string, named: string, cwd: string): TomlFile {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const [c, rule] = code === 'ENOENT' ? (['FILE_MISSING', 'file not found'] as const) : (['FILE_UNREADABLE', `cannot read file (${code ?? String(err)})`] as const);
    throw new ConfigError([{ code: c, where: named === 'default' ? path : `${named} ${path}`, value: '', rule }]);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text, { integersAsBigInt: true, unsafeKeyBehaviour: 'throw' });
  } catch (err) {
    const detail = err instanceof TomlError ? `${err.message.split('\n')[0] ?? ''} (line ${err.line}, column ${err.column})` : String(err);
    throw new ConfigError([{ code: 'FILE_NOT_TOML', where: path, value: '', rule: `not valid TOML: ${detail}` }]);
  }
  return { path, doc, raw: rawTomlValues(text) };
}
