import type { Ino } from '../tree/ops.js';

/** What the file system needs of the journal. */
export interface JournalPort {
  /** Appends a record; resolves with its sequence number once it is as safe as the sync policy promises. */
  append(type: number, payload: Buffer, opts?: { owned?: boolean }): Promise<number>;
  /** The sequence number of the last append, assigned synchronously in call order. */
  readonly lastSeq: number;
  readonly committedSeq: number;
  readonly syncSettings: { readonly policy: 'interval' | 'manual' | 'immediate' };
  /** False when the disk has no room for a record of `payloadBytes`: the change is refused (ENOSPC) before it is made. */
  hasRoom?(payloadBytes: number): boolean;
  /** Set once a journal write has failed: every later append is refused with it. */
  readonly failed: Error | null;
  /** Makes everything appended so far durable (reason `manual`: `fsync(2)`, `JOURNAL FLUSH`). */
  flush(): Promise<void>;
  /** Makes every commit of entries up to `seq` wait for `barrier(seq)` (null: nothing to wait for). */
  holdCommits?(barrier: (seq: number) => Promise<void> | null): void;
}

export interface DirtyReservationPort {
  readonly bytes: number;
  release(): void;
}

/** What the file system needs of the cache (`FileCache`). Dirty data is tagged with its journal sequence. */
export interface CachePort {
  /** The dirty-quota check, before the journal append: throws (errno ENOSPC) and changes nothing, or holds the bytes. */
  reserveDirty(ino: Ino, offset: number, length: number): DirtyReservationPort;
  write(ino: Ino, offset: number, data: Buffer, seq: number, opts?: { reservation?: DirtyReservationPort; replay?: boolean }): Promise<void>;
  /**
   * Bytes held for [offset, offset+length): cached bytes, the holes to fetch, and a token for
   * `putClean`; into `into` when given (zeroed first), else into a new buffer.
   */
  read(ino: Ino, offset: number, length: number, into?: Buffer): Promise<{ data: Buffer; holes: { offset: number; length: number }[]; token: number }>;
  putClean(ino: Ino, offset: number, data: Buffer, token?: number): Promise<number>;
  truncate(ino: Ino, size: number): Promise<void>;
  remove(ino: Ino): Promise<void>;
  /** Data of a file the cache lost after acknowledging it (a failed write-through). */
  onDataLost(listener: (ino: Ino, err: unknown) => void): () => void;
  /** Write-behind fails (`err`) and written data waits in memory; null once it works again. */
  onWriteBehindStall?(listener: (err: unknown, heldBytes: number) => void): () => void;
}

/** The backpressure gate writers pass. */
export interface GatePort {
  readonly isOpen: boolean;
  /** Waits while writers are held; `signal` aborts the wait (an interrupted request). */
  admit(signal?: AbortSignal): Promise<void>;
}
