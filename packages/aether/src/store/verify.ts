import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AetherError } from '../errors.js';
import { ROOT_INO } from '../tree/ops.js';

/** A chunk whose bytes on disk are not what its name (its SHA-256) says. */
export interface DamagedChunk {
  hash: string;
  pack: string;
  offset: number;
  length: number;
  problem: 'pack missing' | 'pack too short' | 'content differs';
  /** Paths of the files whose blocks are this chunk (`inode N` for one without a name). */
  files: string[];
}

export interface StoreVerifyReport {
  store: string;
  chunks: number;
  bytes: number;
  /** Damaged chunks that files are made of (or, at a hub, that it keeps for other reasons). */
  damaged: DamagedChunk[];
  /** Damaged chunks no file uses any more (space reclaim drops them): nothing is lost. */
  damagedUnused: number;
  /** What is wrong with the index database itself (SQLite's integrity check, and the journal's committed mark): empty when sound. */
  database: string[];
}

/** Chunks listed per read of the index (each page is read in pack order: fewer, larger pages pass over the packs fewer times). */
const PAGE = 65_536;

interface ChunkRow {
  hash: string;
  pack: number;
  offset: number;
  length: number;
}

/**
 * Reads every chunk of the store in `dir` (a mount's `<state_dir>/store`, or a hub's data
 * directory) and checks it against its SHA-256, which reads do not (it would halve sequential
 * reads). Read-only, and safe while a mount or hub uses the store: a chunk that looks damaged is
 * looked up again in the committed index before it is reported (space reclaim may have moved it
 * to another pack, or dropped it, since the listing began).
 */
export async function verifyStore(dir: string, opts: { page?: number; committedSeq?: number } = {}): Promise<StoreVerifyReport> {
  const dbPath = join(dir, 'meta.sqlite');
  if (!existsSync(dbPath)) throw new AetherError('STORE_OPEN_FAILED', `no store at ${dir} (${dbPath} does not exist)`);
  let db: Database.Database;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new AetherError('STORE_OPEN_FAILED', `store ${dbPath}: ${(err as Error).message}`, { cause: err });
  }
  const packs = new PackReader(join(dir, 'packs'));
  const report: StoreVerifyReport = { store: dir, chunks: 0, bytes: 0, damaged: [], damagedUnused: 0, database: [] };
  const found: DamagedChunk[] = [];
  try {
    // Pages zeroed in the database passed for a sound store whose files read EIO (a review).
    report.database = integrityProblems(db);
    // A database that lost its write-ahead log is consistent, and behind what was committed to it.
    const applied = (db.prepare("SELECT value FROM meta WHERE key = 'applied_seq'").get() as { value: number } | undefined)?.value ?? 0;
    if (opts.committedSeq !== undefined && applied < opts.committedSeq) {
      report.database.push(`it holds journal entries up to ${applied}, but entries up to ${opts.committedSeq} were committed to it (its database, or its -wal file, lost or damaged)`);
    }
    const now = db.prepare('SELECT hash, pack, offset, length FROM chunks WHERE hash = ?');
    // The listing goes by pages of the hash index, each its own short read: one read for the whole
    // run kept a running mount's or hub's write-ahead log from being checkpointed meanwhile. A page
    // is read in pack order.
    const page = db.prepare('SELECT hash, pack, offset, length FROM chunks WHERE hash > ? ORDER BY hash LIMIT ?');
    for (let after = ''; ; ) {
      const rows = page.all(after, opts.page ?? PAGE) as ChunkRow[];
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.hash;
      rows.sort((a, b) => a.pack - b.pack || a.offset - b.offset);
      for (const row of rows) {
        let problem = await packs.check(row);
        if (problem !== undefined) {
          const moved = now.get(row.hash) as ChunkRow | undefined;
          if (moved === undefined) continue;
          if (moved.pack !== row.pack || moved.offset !== row.offset) problem = await packs.check(moved);
          if (problem !== undefined) found.push({ hash: row.hash, pack: packs.path(moved.pack), offset: moved.offset, length: moved.length, problem, files: [] });
        }
        report.chunks++;
        report.bytes += row.length;
      }
    }
    if (found.length > 0) {
      const files = filesUsing(db, new Set(found.map((d) => d.hash)));
      for (const d of found) {
        d.files = files.get(d.hash) ?? [];
        if (d.files.length === 0 && !stillKept(db, d.hash)) report.damagedUnused++;
        else report.damaged.push(d);
      }
    }
  } catch (err) {
    if (err instanceof AetherError) throw err;
    throw new AetherError('STORE_CORRUPT', `store ${dbPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    await packs.close();
    db.close();
  }
  return report;
}

/** SQLite's integrity check of the index: its complaints, or the error it stopped with. */
function integrityProblems(db: Database.Database): string[] {
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).filter((r) => r !== 'ok');
  } catch (err) {
    return [(err as Error).message];
  }
}

/** Reads chunks pack by pack, one descriptor open at a time. */
class PackReader {
  private at: { n: number; fh: FileHandle | undefined } | undefined;
  private buf = Buffer.alloc(256 * 1024);

  constructor(private readonly dir: string) {}

  path(n: number): string {
    return join(this.dir, `${n}.pack`);
  }

  async check(row: ChunkRow): Promise<DamagedChunk['problem'] | undefined> {
    const fh = await this.fileOf(row.pack);
    if (fh === undefined) return 'pack missing';
    if (this.buf.length < row.length) this.buf = Buffer.alloc(row.length);
    const { bytesRead } = await fh.read(this.buf, 0, row.length, row.offset);
    if (bytesRead < row.length) return 'pack too short';
    return createHash('sha256').update(this.buf.subarray(0, row.length)).digest('hex') === row.hash ? undefined : 'content differs';
  }

  private async fileOf(n: number): Promise<FileHandle | undefined> {
    if (this.at?.n === n) return this.at.fh;
    await this.close();
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.path(n), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.at = { n, fh };
    return fh;
  }

  async close(): Promise<void> {
    await this.at?.fh?.close();
    this.at = undefined;
  }
}

/**
 * The paths of the files made of each of `hashes`, as the committed tree names them: one pass
 * over the blocks (they are indexed by file, not by hash; a query per damaged chunk scanned them
 * all each time).
 */
function filesUsing(db: Database.Database, hashes: ReadonlySet<string>): Map<string, string[]> {
  const inos = new Map<string, Set<number>>();
  for (const r of db.prepare('SELECT ino, hash FROM blocks').iterate() as IterableIterator<{ ino: number; hash: string }>) {
    if (!hashes.has(r.hash)) continue;
    let set = inos.get(r.hash);
    if (!set) inos.set(r.hash, (set = new Set()));
    set.add(r.ino);
  }
  const nameOf = db.prepare('SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent, name LIMIT 1');
  const pathOf = (ino: number): string => {
    const parts: string[] = [];
    for (let at = ino, hops = 0; at !== ROOT_INO; hops++) {
      const d = nameOf.get(at) as { parent: number; name: string } | undefined;
      if (d === undefined || hops > 4096) return `inode ${ino}`;
      parts.unshift(d.name);
      at = d.parent;
    }
    return `/${parts.join('/')}`;
  };
  return new Map([...inos].map(([hash, set]) => [hash, [...set].map(pathOf)]));
}

/**
 * True when a chunk no file uses is still kept by the store: a hub keeps every chunk until its
 * grace after the last use has expired (changefeed entries other mounts have yet to read name
 * them), so there it counts as damage; a mount's store drops it at the next reclaim.
 */
function stillKept(db: Database.Database, hash: string): boolean {
  const hub = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hub_dying'").get() !== undefined;
  return hub && db.prepare('SELECT 1 FROM hub_dying WHERE hash = ? AND expired = 1').get(hash) === undefined;
}
