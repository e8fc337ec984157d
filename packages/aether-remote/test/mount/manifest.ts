/**
 * A manifest of a file tree: everything a restart must reproduce, one line per name, so two
 * manifests compare with a plain deepEqual and a failure shows the differing entries.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

export interface ManifestEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** The first path (in sorted order) naming the same inode: equal for every hard link of a file. */
  inodeOf: string;
  target?: string;
  sha256?: string;
}

const ms = (ns: bigint): number => Number(ns / 1_000_000n);

function typeOf(st: BigIntStats): ManifestEntry['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Walks `root` (without following symbolic links) and describes every name below it. */
export function manifest(root: string): ManifestEntry[] {
  const found: { path: string; st: BigIntStats }[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, path), { bigint: true });
      found.push({ path, st });
      if (st.isDirectory()) walk(path);
    }
  };
  walk('');
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const firstByIno = new Map<bigint, string>();
  for (const { path, st } of found) if (!firstByIno.has(st.ino)) firstByIno.set(st.ino, path);
  return found.map(({ path, st }) => {
    const type = typeOf(st);
    const e: ManifestEntry = {
      path,
      type,
      mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      nlink: Number(st.nlink),
      atimeMs: ms(st.atimeNs),
      mtimeMs: ms(st.mtimeNs),
      ctimeMs: ms(st.ctimeNs),
      inodeOf: firstByIno.get(st.ino) as string,
    };
    if (type === 'symlink') e.target = readlinkSync(join(root, path));
    if (type === 'file') e.sha256 = createHash('sha256').update(readFileSync(join(root, path))).digest('hex');
    return e;
  });
}
