import type { Registry } from 'prom-client';
import type { ConfigStore } from '../config/store.js';
import type { ReclaimResult } from '../store/chunks.js';
import type { FileCache } from '../runtime/cache/index.js';
import type { Journal } from '../runtime/journal/index.js';
import type { MemoryMeta } from '../tree/meta.js';
import type { Op } from '../tree/ops.js';
import type { ContentSource, Vfs } from './vfs.js';

/** What the mount needs of whatever ships its journal somewhere: LocalDrain, or a hub bridge. */
export interface SyncDrain {
  readonly paused: boolean;
  readonly backlog: number;
  readonly lastError: string | null;
  kick(): void;
  pause(): void;
  resume(): void;
  whenIdle(): Promise<void>;
  close(): Promise<void>;
}

export interface RemoteOpenContext {
  stateDir: string;
  registry: Registry;
  config: ConfigStore;
  log: (line: string) => void;
}

export interface RemoteDrainContext {
  journal: Journal;
  cache: FileCache;
  vfs: Vfs;
  view: MemoryMeta;
  /** The journal is committed up to `seq`: mark the cache and the Vfs. */
  onCommitted: (seq: number) => void;
}

/**
 * A committed tree kept elsewhere (a hub), replacing local mode's embedded store. The mount
 * stays the same: view, journal, cache, backpressure, FUSE; this supplies the committed content,
 * the starting view, inode numbering and the drain. Lives in aether-remote; core only knows this.
 */
export interface RemoteBackend {
  readonly mode: string;
  /** Opens the committed replica (and, on a first start, waits for the hub to assign an inode range). */
  open(ctx: RemoteOpenContext): Promise<void>;
  /** Journal sequence already committed at the hub as far as the replica knows (≥ the journal's own watermark after a crash). */
  readonly committedJournalSeq: number;
  readonly committed: ContentSource;
  /** Fills the starting view; from then on the backend mirrors remote changes into it and the cache. */
  loadInto(view: MemoryMeta, cache: FileCache): void;
  /** Highest inode number this mount has used; new ones count up from here. */
  readonly maxIno: number;
  /** How long the kernel keeps names and attributes: other mounts change them behind its back. */
  readonly kernelCacheSeconds: number;
  startDrain(ctx: RemoteDrainContext): SyncDrain;
  /** A journaled local change, entry `seq` (the Vfs tells it as it is made, and as it is replayed). */
  localOp?(op: Op, seq: number): void;
  /** True while the backend still needs `ino` though it has no name and is closed (changes to ship from it). */
  holdsInode?(ino: number): boolean;
  /** The last descriptor of `ino` was closed. */
  closed?(ino: number): void;
  /** `aether store reclaim`: gives back the space of the committed tree's dead data now. */
  reclaimSpace?(): Promise<ReclaimResult>;
  status(): Record<string, unknown>;
  /** The mount is stopping: no new work, the last drain runs. */
  stopping(): void;
  close(): Promise<void>;
}
