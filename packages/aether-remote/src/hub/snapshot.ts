import type { Database } from 'better-sqlite3';
import type { SnapshotInode, SnapshotPartFrame } from '../protocol/frames.js';
import type { InodeRow } from '@aether/core/store/sqlite-meta';

/** Where the snapshot goes: a connection's text frames, with flow control. */
export interface SnapshotOut {
  readonly open: boolean;
  sendText(text: string): void;
  drain(): Promise<void>;
}

function toSnapshotInode(r: InodeRow): SnapshotInode {
  const i: SnapshotInode = { ino: r.ino, kind: r.kind, mode: r.mode, uid: r.uid, gid: r.gid, size: r.size, nlink: r.nlink, atimeMs: r.atime_ms, mtimeMs: r.mtime_ms, ctimeMs: r.ctime_ms };
  if (r.target !== null) i.target = r.target;
  return i;
}

/**
 * Streams the whole tree (inodes, names, block maps) as of one hub sequence, in parts of
 * `pageRows` rows, and returns that sequence. `db` is a read-only connection of its own: held in
 * one read transaction, it sees a single state however long the client takes, while commits go on.
 * Returns null if the connection closed midway. Closes `db`.
 */
export async function sendSnapshot(db: Database, out: SnapshotOut, pageRows: number): Promise<number | null> {
  db.exec('BEGIN');
  try {
    const { hub_seq: hubSeq } = db.prepare('SELECT hub_seq FROM hub_state WHERE id = 1').get() as { hub_seq: number };
    out.sendText(JSON.stringify({ t: 'snapshot-begin', hubSeq }));
    const send = async (part: Partial<SnapshotPartFrame>): Promise<boolean> => {
      out.sendText(JSON.stringify({ t: 'snapshot-part', inodes: [], dentries: [], blocks: [], ...part }));
      await out.drain();
      return out.open;
    };
    const inodes = db.prepare('SELECT * FROM inodes WHERE ino > ? ORDER BY ino LIMIT ?');
    for (let after = -1; ; ) {
      const rows = inodes.all(after, pageRows) as InodeRow[];
      if (rows.length === 0) break;
      if (!(await send({ inodes: rows.map(toSnapshotInode) }))) return null;
      after = rows[rows.length - 1]!.ino;
    }
    const dentries = db.prepare('SELECT parent, name, ino FROM dentries WHERE (parent, name) > (?, ?) ORDER BY parent, name LIMIT ?');
    for (let after: [number, string] = [-1, '']; ; ) {
      const rows = dentries.all(after[0], after[1], pageRows) as { parent: number; name: string; ino: number }[];
      if (rows.length === 0) break;
      if (!(await send({ dentries: rows.map((d) => [d.parent, d.name, d.ino] as [number, string, number]) }))) return null;
      const last = rows[rows.length - 1]!;
      after = [last.parent, last.name];
    }
    const blocks = db.prepare('SELECT ino, idx, hash FROM blocks WHERE (ino, idx) > (?, ?) ORDER BY ino, idx LIMIT ?');
    for (let after: [number, number] = [-1, -1]; ; ) {
      const rows = blocks.all(after[0], after[1], pageRows) as { ino: number; idx: number; hash: string }[];
      if (rows.length === 0) break;
      if (!(await send({ blocks: rows.map((b) => [b.ino, b.idx, b.hash] as [number, number, string]) }))) return null;
      const last = rows[rows.length - 1]!;
      after = [last.ino, last.idx];
    }
    out.sendText(JSON.stringify({ t: 'snapshot-end', hubSeq }));
    return hubSeq;
  } finally {
    db.exec('COMMIT');
    db.close();
  }
}
