import { rangeRule, rulesFor } from '../rules.js';
import { SETTINGS, settingName, tomlKey, tomlTable, type Setting } from '../schema/index.js';
import { typeName, u64Rule } from '../values.js';

const bullets = (xs: readonly string[]): string[] => xs.map((x) => `- ${x}`);

function placeholder(s: Setting): string {
  switch (s.type.kind) {
    case 'u64':
      return `<${s.type.unit}>`;
    case 'f64':
      return s.type.unit === 'percent' ? '<percent>' : '<factor>';
    case 'enum':
      return s.type.values.join('|');
    case 'listen':
      return '<host:port|off>';
    default:
      return '<value>';
  }
}

function shownDefault(s: Setting): string {
  const text = typeof s.default === 'string' ? `"${s.default}"` : s.type.kind === 'f64' ? s.default.toFixed(1) : String(s.default);
  const unit = s.type.kind === 'u64' ? ` ${s.type.unit}` : '';
  return `\`${text}\`${unit}${s.defaultNote ? ` (${s.defaultNote})` : ''}`;
}

/** A value with a unit suffix, as a user might write one, for each unit. */
const SUFFIXED = { bytes: '2MiB', ms: '5s', seconds: '1m', entries: '10k' } as const;

function typeRules(s: Setting): string[] {
  switch (s.type.kind) {
    case 'u64':
      return [
        `${u64Rule(s.type).replace(/^must/, 'Must')}.`,
        `Unit suffixes are not accepted (\`${SUFFIXED[s.type.unit]}\` is invalid; use raw ${s.type.unit}).`,
        'In `aether.toml` the value must be a TOML integer written in decimal digits: a float, a string, hex/octal/binary or `1_000` spellings are errors. An empty environment value is an error, not "unset".',
      ];
    case 'f64':
      return ['Must be numeric and non-negative at parse time (a finite decimal number; `nan`, `inf` and signs are refused).', 'In `aether.toml` a TOML float or integer; a string is an error.'];
    case 'enum':
      return [`Must be ${typeName(s.type)}.`, 'In `aether.toml` a TOML string.'];
    case 'listen':
      return ['Must be `host:port` with a port 0..65535, or `off`.', 'In `aether.toml` a TOML string.'];
    case 'path':
      return ['In `aether.toml` a TOML string.'];
    case 'string':
      return ['Any string; in `aether.toml` a TOML string.'];
  }
}

function inputSurfaces(s: Setting): string[] {
  const table = tomlTable(s);
  const file = table === '' ? `- Config file (\`aether.toml\`, top-level key): \`${tomlKey(s)} = ${placeholder(s)}\`` : `- Config file (\`aether.toml\`): \`[${table}]\` \`${tomlKey(s)} = ${placeholder(s)}\``;
  const override = s.override ? `- Programmatic override: \`ConfigOverrides.${s.override}\`` : '- Programmatic override: none (no `ConfigOverrides` field).';
  const flag = s.cliFlag ? `- CLI flag: \`aether mount ${s.cliFlag}\` sets the same value as the override.` : 'No dedicated CLI flag exists for this setting.';
  return [`- Env: \`${s.env}=${placeholder(s)}\``, file, override, '', flag];
}

/** One setting's reference page, in the seeds' section layout. */
export function renderSettingPage(s: Setting): string {
  const name = settingName(s);
  const example = s.doc.example;
  const envLines = Object.entries(example.env).map(([k, v]) => `export ${k}=${v}`);
  const out = [
    `# ${s.env}`,
    '',
    'Deep-dive reference for:',
    '',
    `- \`${s.env}\``,
    '',
    '## Status',
    '',
    '- active',
    '',
    '## Audience',
    '',
    '- production/user',
    '',
    '## Type and Default',
    '',
    `- Type: ${typeName(s.type)}.`,
    `- Default: ${shownDefault(s)}.`,
    `- TOML key: \`${name}\`.`,
    '',
    '## What It Does',
    '',
    ...s.doc.whatItDoes.flatMap((p) => [p, '']),
    '## Runtime Behavior',
    '',
    ...bullets(s.doc.runtime),
    `- Live reload: ${s.reloadable ? 'yes — a reload (SIGHUP, `aether config reload`) applies a new value at runtime.' : 'no — a changed value is reported as needing a restart and the running value is kept.'}`,
    '',
    '## Input Surfaces',
    '',
    ...inputSurfaces(s),
    '',
    '## Resolution and Override Order',
    '',
    s.override ? '- Defaults < `aether.toml` < environment < overrides.' : '- Defaults < `aether.toml` < environment (this setting has no programmatic override).',
    '- The file is `--config FILE`, else the file named by `AFS_AETHER_CONFIG`, else `./aether.toml` when it exists; a named file that is missing or not valid TOML is an error.',
    '',
    '## Value Rules',
    '',
    ...bullets([
      ...typeRules(s),
      ...(s.range ? [`${rangeRule(s.range).replace(/^must/, 'Must')}.`] : []),
      ...rulesFor(name).map((r) => r.doc[name] ?? ''),
      ...s.doc.valueNotes,
      'Every problem is reported on one line naming the variable or `file:key`, the value and the rule; all problems are reported together and an invalid configuration starts nothing.',
    ]),
    '',
    '## Interaction Notes',
    '',
    ...bullets(s.doc.interactions),
    '',
    '## Observability',
    '',
    ...bullets(s.doc.observability),
    '',
    '## Example',
    '',
    '```sh',
    ...envLines,
    '```',
    '',
    ...(example.toml ? ['```toml', example.toml, '```', ''] : []),
    example.explanation,
    '',
    '## Primary Implementation Sources',
    '',
    ...bullets(s.sources.map((x) => `\`${x}\``)),
    '',
  ];
  return out.join('\n');
}

/** The index page linking every setting. */
export function renderIndex(): string {
  const rows = SETTINGS.map(
    (s) => `| [\`${s.env}\`](${s.env}.md) | \`${settingName(s)}\` | ${s.override ? `\`${s.override}\`` : '—'} | ${typeName(s.type)} | ${shownDefault(s)} | ${s.reloadable ? 'yes' : 'restart'} |`,
  );
  return [
    '# Aether configuration reference',
    '',
    'Generated from the schema in `packages/aether/src/config/schema/` by `npm run docs:config`; a test fails when these pages differ from the generator.',
    '',
    'Resolution order: defaults < `aether.toml` < environment < `ConfigOverrides`.',
    '',
    '| env | TOML key | override | type | default | live reload |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

/** Every generated file, by name relative to `docs/config/`. */
export function renderAllDocs(): Map<string, string> {
  const files = new Map<string, string>([['README.md', renderIndex()]]);
  for (const s of SETTINGS) files.set(`${s.env}.md`, renderSettingPage(s));
  return files;
}
