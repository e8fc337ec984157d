import { NAME_MAX_BYTES } from '../protocol/wire-ops.js';

/** An extension longer than this is taken as part of the stem (`a.<200 chars>` has none). */
const EXT_BYTES_MAX = 32;

/** `20261122T010203Z`: the UTC time of `ms`, to the second. */
export function utcStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** Splits `a.txt` into `a` and `.txt`; a leading dot (`.bashrc`) is no extension. */
export function splitExt(name: string): [stem: string, ext: string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return [name, ''];
  const ext = name.slice(dot);
  return Buffer.byteLength(ext) > EXT_BYTES_MAX ? [name, ''] : [name.slice(0, dot), ext];
}

function cutToBytes(s: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * The name a losing change is kept under (DESIGN §2): `NAME.conflict-<mount-id>-<UTC>` plus the
 * original extension, e.g. `a.txt` → `a.conflict-<id>-20261122T010203Z.txt`. When that name is
 * taken too (`taken`), `-2`, `-3`, ... follow the timestamp. The stem is shortened so the result
 * stays within 255 bytes.
 */
export function conflictName(name: string, mountId: string, nowMs: number, taken: (candidate: string) => boolean): string {
  const [stem, ext] = splitExt(name);
  const stamp = utcStamp(nowMs);
  for (let k = 1; ; k++) {
    const suffix = `.conflict-${mountId}-${stamp}${k === 1 ? '' : `-${k}`}${ext}`;
    const candidate = cutToBytes(stem, NAME_MAX_BYTES - Buffer.byteLength(suffix)) + suffix;
    if (!taken(candidate)) return candidate;
  }
}
