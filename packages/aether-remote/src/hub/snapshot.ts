import type { SnapshotPartFrame } from '../protocol/frames.js';
import type { SnapshotReader } from './storage.js';

/** Where the snapshot goes: a connection's text frames, with flow control. */
export interface SnapshotOut {
  readonly open: boolean;
  sendText(text: string): void;
  drain(): Promise<void>;
  /** Resolves once the client has room for one more feed frame (or the connection is gone). */
  feedRoom(): Promise<void>;
  /** Sends one feed frame, spending one of the client's credit. */
  sendFeed(text: string): void;
}

/**
 * Streams the whole tree (inodes, names, block maps) as of the reader's hub sequence, in parts of
 * `pageRows` rows, and returns that sequence. The reader holds one read transaction of its own,
 * so it sees a single state however long the client takes, while commits go on. Returns null if
 * the connection closed midway, or `current()` turned false (another follow came). Closes the
 * reader.
 */
export async function sendSnapshot(reader: SnapshotReader, out: SnapshotOut, pageRows: number, current: () => boolean = () => true): Promise<number | null> {
  try {
    const { hubSeq } = reader;
    await out.feedRoom();
    out.sendFeed(JSON.stringify({ t: 'snapshot-begin', hubSeq }));
    const send = async (part: Partial<SnapshotPartFrame>): Promise<boolean> => {
      await out.feedRoom();
      if (!current()) return false;
      out.sendFeed(JSON.stringify({ t: 'snapshot-part', inodes: [], dentries: [], blocks: [], ...part }));
      await out.drain();
      return out.open && current();
    };
    for (let after = -1; ; ) {
      const rows = await reader.inodes(after, pageRows);
      if (rows.length === 0) break;
      if (!(await send({ inodes: rows }))) return null;
      after = rows[rows.length - 1]!.ino;
    }
    for (let after: readonly [number, string] = [-1, '']; ; ) {
      const rows = await reader.dentries(after, pageRows);
      if (rows.length === 0) break;
      if (!(await send({ dentries: rows }))) return null;
      const last = rows[rows.length - 1]!;
      after = [last[0], last[1]];
    }
    for (let after: readonly [number, number] = [-1, -1]; ; ) {
      const rows = await reader.blocks(after, pageRows);
      if (rows.length === 0) break;
      if (!(await send({ blocks: rows }))) return null;
      const last = rows[rows.length - 1]!;
      after = [last[0], last[1]];
    }
    await out.feedRoom();
    if (!current()) return null;
    out.sendFeed(JSON.stringify({ t: 'snapshot-end', hubSeq }));
    return hubSeq;
  } finally {
    await reader.close();
  }
}
