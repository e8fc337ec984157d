import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { AetherError } from '../../errors.js';
import type { JournalFs } from './fs-layer.js';
import { GroupRun } from './group-run.js';
import { readU64, writeU64 } from './record.js';

/**
 * The journal's checkpoint, `checkpoint` in the journal directory, 32 bytes:
 *
 *   0  8 bytes  magic "AETHCKPT"
 *   8  u32      format version (1)
 *  12  u64      committed sequence number (every entry up to it is committed downstream)
 *  20  u64      durable sequence number (every entry up to it had been fsynced)
 *  28  u32      CRC-32 of bytes 0..28
 *
 * It is replaced atomically: written to `checkpoint.tmp`, fdatasynced, renamed over the old one,
 * and the directory fsynced. A missing file means nothing was committed or fsynced yet.
 */
export const CHECKPOINT_FILE = 'checkpoint';
export const CHECKPOINT_TMP_FILE = 'checkpoint.tmp';
const CHECKPOINT_BYTES = 32;
const MAGIC = Buffer.from('AETHCKPT', 'latin1');

export interface CheckpointValues {
  committedSeq: number;
  durableSeq: number;
}

export function encodeCheckpoint(v: CheckpointValues): Buffer {
  const b = Buffer.alloc(CHECKPOINT_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(1, 8);
  writeU64(b, v.committedSeq, 12);
  writeU64(b, v.durableSeq, 20);
  b.writeUInt32LE(crc32(b.subarray(0, 28)), 28);
  return b;
}

/** The checkpoint on disk (zeros when there is none). */
export async function readCheckpoint(fs: JournalFs, dir: string): Promise<CheckpointValues> {
  const path = join(dir, CHECKPOINT_FILE);
  const b = await fs.readFile(path);
  if (b === null) return { committedSeq: 0, durableSeq: 0 };
  const ok = b.length === CHECKPOINT_BYTES && b.subarray(0, 8).equals(MAGIC) && b.readUInt32LE(8) === 1 && b.readUInt32LE(28) === crc32(b.subarray(0, 28));
  const v = { committedSeq: ok ? readU64(b, 12) : Number.NaN, durableSeq: ok ? readU64(b, 20) : Number.NaN };
  if (!Number.isFinite(v.committedSeq) || !Number.isFinite(v.durableSeq)) {
    // The file is only ever replaced whole, so a bad one is damage, not a torn write.
    throw new AetherError('JOURNAL_CORRUPT', `journal checkpoint ${path} is damaged`, { context: { path } });
  }
  return v;
}

/**
 * Persists the checkpoint; concurrent requests share one write, which takes the values current
 * when it starts (so a later write never carries older ones).
 */
export class CheckpointWriter {
  private onDisk: CheckpointValues;
  private readonly writes: GroupRun<void>;

  constructor(
    private readonly fs: JournalFs,
    private readonly dir: string,
    initial: CheckpointValues,
    private readonly current: () => CheckpointValues,
  ) {
    this.onDisk = { ...initial };
    this.writes = new GroupRun(() => this.write());
  }

  /** The committed sequence number known to be on disk. */
  get durableCommittedSeq(): number {
    return this.onDisk.committedSeq;
  }

  /** Resolves once the checkpoint on disk holds at least the current values. */
  persist(): Promise<void> {
    const want = this.current();
    if (want.committedSeq <= this.onDisk.committedSeq && want.durableSeq <= this.onDisk.durableSeq) return Promise.resolve();
    return this.writes.run();
  }

  idle(): Promise<void> {
    return this.writes.idle();
  }

  private async write(): Promise<void> {
    const v = this.current();
    if (v.committedSeq <= this.onDisk.committedSeq && v.durableSeq <= this.onDisk.durableSeq) return;
    const tmp = join(this.dir, CHECKPOINT_TMP_FILE);
    const file = await this.fs.open(tmp, 'w');
    try {
      file.writevSync([encodeCheckpoint(v)], 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await this.fs.rename(tmp, join(this.dir, CHECKPOINT_FILE));
    await this.fs.syncDir(this.dir);
    this.onDisk = { committedSeq: Math.max(this.onDisk.committedSeq, v.committedSeq), durableSeq: Math.max(this.onDisk.durableSeq, v.durableSeq) };
  }
}
