import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { AetherError } from '../../errors.js';
import type { JournalFs } from './fs-layer.js';
import { GroupRun } from './group-run.js';
import { readU64, writeU64 } from './record.js';

/**
 * The commit watermark, persisted as `checkpoint` in the journal directory, 24 bytes:
 *
 *   0  8 bytes  magic "AETHCKPT"
 *   8  u32      format version (1)
 *  12  u64      committed sequence number (every entry up to it is committed downstream)
 *  20  u32      CRC-32 of bytes 0..20
 *
 * It is replaced atomically: written to `checkpoint.tmp`, fdatasynced, renamed over the old one,
 * and the directory fsynced. A missing file means nothing was ever committed.
 */
export const CHECKPOINT_FILE = 'checkpoint';
export const CHECKPOINT_TMP_FILE = 'checkpoint.tmp';
const CHECKPOINT_BYTES = 24;
const MAGIC = Buffer.from('AETHCKPT', 'latin1');

export function encodeCheckpoint(committedSeq: number): Buffer {
  const b = Buffer.alloc(CHECKPOINT_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(1, 8);
  writeU64(b, committedSeq, 12);
  b.writeUInt32LE(crc32(b.subarray(0, 20)), 20);
  return b;
}

/** The committed sequence number on disk (0 when there is no checkpoint). */
export async function readCheckpoint(fs: JournalFs, dir: string): Promise<number> {
  const path = join(dir, CHECKPOINT_FILE);
  const b = await fs.readFile(path);
  if (b === null) return 0;
  const ok = b.length === CHECKPOINT_BYTES && b.subarray(0, 8).equals(MAGIC) && b.readUInt32LE(8) === 1 && b.readUInt32LE(20) === crc32(b.subarray(0, 20));
  const seq = ok ? readU64(b, 12) : Number.NaN;
  if (!Number.isFinite(seq)) {
    // The file is only ever replaced whole, so a bad one is damage, not a torn write.
    throw new AetherError('JOURNAL_CORRUPT', `journal checkpoint ${path} is damaged`, { context: { path } });
  }
  return seq;
}

/** Persists the commit watermark; concurrent commits share one write (the latest value wins). */
export class CheckpointWriter {
  private wantedSeq: number;
  private durable: number;
  private readonly writes: GroupRun<void>;

  constructor(
    private readonly fs: JournalFs,
    private readonly dir: string,
    durableSeq: number,
  ) {
    this.wantedSeq = durableSeq;
    this.durable = durableSeq;
    this.writes = new GroupRun(() => this.write());
  }

  /** The highest committed sequence number known to be on disk. */
  get durableSeq(): number {
    return this.durable;
  }

  /** Resolves once a checkpoint at or above `seq` is durable. */
  persist(seq: number): Promise<void> {
    if (seq <= this.durable) return Promise.resolve();
    this.wantedSeq = Math.max(this.wantedSeq, seq);
    return this.writes.run();
  }

  idle(): Promise<void> {
    return this.writes.idle();
  }

  private async write(): Promise<void> {
    const seq = this.wantedSeq;
    if (seq <= this.durable) return;
    const tmp = join(this.dir, CHECKPOINT_TMP_FILE);
    const file = await this.fs.open(tmp, 'w');
    try {
      file.writevSync([encodeCheckpoint(seq)], 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await this.fs.rename(tmp, join(this.dir, CHECKPOINT_FILE));
    await this.fs.syncDir(this.dir);
    this.durable = Math.max(this.durable, seq);
  }
}
