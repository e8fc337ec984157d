/**
 * The text of every value in a TOML document, by dotted key: TOML's parser turns `0x5DC`, `0o77`
 * and `1_000` into plain integers, and the settings accept decimal digits only (DESIGN §3). Runs
 * on text the parser has already accepted, so it only needs to find where each value starts and
 * ends: table headers, dotted and quoted keys, inline tables (at any depth), arrays, strings of
 * all four kinds and comments. Should it meet anything else it stops and returns what it has.
 */
const BARE_KEY = /[A-Za-z0-9_-]+/y;
/** A number, a boolean, or a date-time (whose date and time may be one space apart). */
const SCALAR = /[^\s,#}\]]+(?: [0-9]{2}:[^\s,#}\]]*)?/y;

export function rawTomlValues(text: string): Map<string, string> {
  const raw = new Map<string, string>();
  // TOML allows a byte order mark first (editors on Windows write one).
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;

  const skipBlank = (newlines: boolean): void => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || (newlines && (c === '\n' || c === '\r'))) i++;
      else if (c === '#') while (i < text.length && text[i] !== '\n') i++;
      else return;
    }
  };

  /** Skips a string starting at `i`; returns its content when it is a one-line one (for keys). */
  const string = (): string => {
    const q = text[i]!;
    const triple = text.startsWith(q.repeat(3), i);
    const close = triple ? q.repeat(3) : q;
    const start = (i += close.length);
    for (;;) {
      if (i >= text.length) throw new Error('unterminated string');
      if (q === '"' && text[i] === '\\') i += 2;
      else if (text.startsWith(close, i)) break;
      else i++;
    }
    // A multi-line string may end with up to two more quotes ("""a""""" is a"").
    let end = i;
    i += close.length;
    while (triple && text[i] === q && i - end < 5) {
      end++;
      i++;
    }
    const body = text.slice(start, end);
    if (q === "'") return body;
    try {
      return JSON.parse(`"${body}"`) as string;
    } catch {
      return body;
    }
  };

  const key = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      skipBlank(false);
      const c = text[i];
      if (c === '"' || c === "'") parts.push(string());
      else {
        BARE_KEY.lastIndex = i;
        const m = BARE_KEY.exec(text);
        if (!m) throw new Error(`unexpected ${JSON.stringify(c)}`);
        parts.push(m[0]);
        i += m[0].length;
      }
      skipBlank(false);
      if (text[i] !== '.') return parts;
      i++;
    }
  };

  /** Skips the value at `i`, recording scalars under `path` (null inside arrays). */
  const value = (path: string[] | null): void => {
    const c = text[i];
    if (c === '"' || c === "'") return void string();
    if (c === '{') {
      i++;
      for (;;) {
        skipBlank(true);
        if (text[i] === '}') return void i++;
        const k = key();
        if (text[i++] !== '=') throw new Error('expected =');
        skipBlank(false);
        value(path && [...path, ...k]);
        skipBlank(true);
        if (text[i] === ',') i++;
      }
    }
    if (c === '[') {
      i++;
      for (;;) {
        skipBlank(true);
        if (text[i] === ']') return void i++;
        value(null);
        skipBlank(true);
        if (text[i] === ',') i++;
      }
    }
    SCALAR.lastIndex = i;
    const m = SCALAR.exec(text);
    if (!m) throw new Error(`unexpected ${JSON.stringify(c)}`);
    i += m[0].length;
    if (path) raw.set(path.join('.'), m[0]);
  };

  let table: string[] = [];
  try {
    for (;;) {
      skipBlank(true);
      if (i >= text.length) return raw;
      if (text[i] === '[') {
        const array = text[i + 1] === '[';
        i += array ? 2 : 1;
        table = key();
        i += array ? 2 : 1;
        continue;
      }
      const k = key();
      if (text[i++] !== '=') throw new Error('expected =');
      skipBlank(false);
      value([...table, ...k]);
    }
  } catch {
    return raw;
  }
}
