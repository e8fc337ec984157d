/** Where a value came from: the four layers, lowest first. */
export type Layer = 'default' | 'file' | 'env' | 'override';

export interface ValueSource {
  layer: Layer;
  /** How a user names the place: `AFS_AETHER_X`, `aether.toml:backpressure.key`, `ConfigOverrides.x`, `default`. */
  where: string;
}

/** One broken rule: which setting, where, the value as written, and the rule in words. */
export interface ConfigProblem {
  code: ConfigErrorCode;
  where: string;
  value: string;
  rule: string;
}

export type ConfigErrorCode =
  | 'INVALID_VALUE'
  | 'WRONG_TOML_TYPE'
  | 'UNKNOWN_KEY'
  | 'CROSS_FIELD'
  | 'FILE_MISSING'
  | 'FILE_UNREADABLE'
  | 'FILE_NOT_TOML';

export function formatProblem(p: ConfigProblem): string {
  const value = p.value === '' ? '' : `=${p.value}`;
  return `${p.where}${value}: ${p.rule}`;
}

/** Thrown when a configuration cannot be resolved; lists every problem found, one line each. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }

  get lines(): string[] {
    return this.problems.map(formatProblem);
  }
}
