import { join } from 'node:path';
import { AetherError, isAetherError } from '@aether/core/errors';
import type { RemoteBackend, RemoteDrainContext, RemoteOpenContext, SyncDrain } from '@aether/core';
import { SpaceReclaimer } from '@aether/core/mount/space-reclaimer';
import type { ContentSource, Vfs } from '@aether/core/mount/vfs';
import type { ReclaimResult } from '@aether/core/store/chunks';
import type { FileCache } from '@aether/core/runtime/cache/index';
import type { DrainJournal } from '@aether/core/mount/drain';
import { MemoryMeta } from '@aether/core/tree/meta';
import { RENAME_EXCHANGE, ROOT_INO, type Ino, type Op } from '@aether/core/tree/ops';
import { ReconnectBackoff } from '../bridge/backoff.js';
import { BridgeClient, type BridgeState } from '../bridge/client.js';
import { parseHubUrls } from '../bridge/hub-urls.js';
import { CLOSE_AUTH_FAILED, type WelcomeFrame } from '../protocol/frames.js';
import { VIEW_KEPT_NAMES_MAX, type WireOp } from '../protocol/wire-ops.js';
import { BridgeDrain } from './bridge-drain.js';
import { loadIdentity, saveIdentity, type MountIdentity } from './identity.js';
import { RemoteApply } from './remote-apply.js';
import { Replica } from './replica.js';
import { alignedNothing, alignTree, type AlignResult } from './view-align.js';

export type OrchestratorState = 'starting' | 'connecting' | 'online' | 'backing off' | 'refused' | 'stopping';

export interface BridgeOptions {
  /** One hub URL, or several (comma-separated) of hubs sharing one store, tried in turn. */
  url: string;
  token: string;
}

/**
 * Kernel cache timeout in bridge mode: other mounts rename, delete and change files behind this
 * kernel's back, so a name or attribute it holds may be stale for at most this long (auto_cache
 * with ac_attr_timeout 0 rechecks size and mtime at every open).
 */
export const BRIDGE_KERNEL_CACHE_SECONDS = 1;

/**
 * Bridge mode (`aether mount --bridge URL --token T`): the mount's committed tree is a replica of
 * the hub's (`<state_dir>/replica`), fed by the changefeed; its journal ships to the hub through
 * the bridge client. The states are those `aether status` shows: starting, connecting, online,
 * backing off, stopping.
 */
export class BridgeOrchestrator implements RemoteBackend {
  readonly mode = 'bridge';
  readonly kernelCacheSeconds = BRIDGE_KERNEL_CACHE_SECONDS;
  private stateValue: OrchestratorState = 'starting';
  private stateDir = '';
  private identity: MountIdentity | undefined;
  private replicaValue: Replica | undefined;
  private client: BridgeClient | undefined;
  private backoff: ReconnectBackoff | undefined;
  private feedLoop: Promise<void> | undefined;
  private drain: BridgeDrain | undefined;
  private shipped: MemoryMeta | undefined;
  private remote: RemoteApply | undefined;
  private log: (line: string) => void = () => undefined;
  private feedError: string | null = null;
  private readonly urls: string[];
  /** Snapshots merged into the mounted view (this mount fell behind the retained feed). */
  private snapshotsMerged = 0;
  /** This mount's ops the hub acknowledged without applying them, by reason. */
  private readonly skipped = new Map<string, number>();
  /**
   * Files with local content changes the hub has not acknowledged: the replica's cursor when the
   * first of them was made (the version they were made on: a remote change the cursor passes
   * after that is one they did not see) and the last one's journal seq.
   */
  private readonly localEdits = new Map<Ino, { base: number; lastSeq: number }>();
  /**
   * The version each unacknowledged unlink, rmdir or rename was made on, by journal seq: the
   * cursor then, or the base of local changes pending on the inode it removed or replaced.
   */
  private readonly removals = new Map<number, number>();
  /** Inodes an unacknowledged unlink or rename over removed here, with that entry's journal seq. */
  private readonly removedHere = new Map<Ino, number>();
  /** Removals after which the view still named what they remove, with those names, by journal seq (WireEntry.viewKept). */
  private readonly viewKept = new Map<number, [Ino, string][]>();
  /**
   * Nodes the journal replay made without a name (their directory or name was gone), by the seq
   * of their mknode: kept until it is acknowledged, and then they take the name the hub gave them.
   */
  private readonly namelessAtReplay = new Map<Ino, number>();
  private lastSkipped: { journal_seq: number; reason: string } | null = null;
  private vfs: Vfs | undefined;
  private view: MemoryMeta | undefined;
  /**
   * Resolved once the journal is replayed (startDrain): until then remote entries wait, so every
   * change the journal holds is noted (and its file's version kept) before one can replace it.
   */
  private readonly replayed = (() => {
    let resolve: () => void = () => undefined;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  })();
  private reclaimer: SpaceReclaimer | undefined;
  private cache: FileCache | undefined;
  private journal: DrainJournal | undefined;
  /**
   * Set when the view may differ from the replica once nothing is pending (a remote change or a
   * journal entry that did not apply as it came, a resolution, a snapshot, a start): the next
   * quiet moment aligns it (`alignIfQuiet`).
   */
  private divergent = false;
  private alignTimer: NodeJS.Timeout | undefined;
  private repairs = 0;
  /** Snapshots asked for because the hub no longer had chunks a changefeed entry named. */
  private resyncs = 0;
  private lastRepair: { at: string; named: number; unnamed: number; changed: number; dropped: number } | null = null;

  constructor(private readonly opts: BridgeOptions) {
    this.urls = parseHubUrls(opts.url);
  }

  get state(): OrchestratorState {
    return this.stateValue;
  }

  private get replica(): Replica {
    if (!this.replicaValue) throw new AetherError('BRIDGE_CLOSED', 'the bridge is not open');
    return this.replicaValue;
  }

  async open(ctx: RemoteOpenContext): Promise<void> {
    this.log = ctx.log;
    this.stateDir = ctx.stateDir;
    let identity = (this.identity = loadIdentity(ctx.stateDir, this.opts.url));
    this.backoff = ReconnectBackoff.fromConfig(ctx.config);
    if (identity.inoBase === undefined) {
      // The first start: inode numbers come from the range the hub assigns, so it must answer once.
      ctx.log(`bridge: first start, waiting for ${this.urls.join(' or ')} to assign this mount's inode range`);
      const probe = this.newClient(ctx, identity, undefined);
      const refused = this.refusedToken(probe);
      try {
        const w = await Promise.race([
          new Promise<WelcomeFrame>((resolve) => {
            probe.once('welcome', resolve);
            probe.start();
          }),
          refused.promise,
        ]);
        identity = this.noteWelcome(w);
      } finally {
        refused.dispose();
        await probe.close();
      }
    }
    const replica = (this.replicaValue = new Replica(join(ctx.stateDir, 'replica'), identity.mountId, identity.inoBase!));
    // The replica keeps chunks in packs as local mode's store does: the space of versions no
    // longer in the tree (nor a kept base) comes back the same way, on this thread.
    this.reclaimer = new SpaceReclaimer(
      { reclaim: (budget) => replica.store.reclaimSpace(budget), forgetPacks: () => undefined, packBytes: () => replica.store.chunks.packBytes() },
      ctx.registry,
      (line) => ctx.log(`bridge: replica ${line}`),
    );
    const client = (this.client = this.newClient(ctx, identity, replica.cursor));
    client.on('state', (s: BridgeState) => this.onClientState(s));
    client.on('welcome', (w: WelcomeFrame) => this.noteWelcome(w));
    client.start();
    this.feedLoop = this.runFeed();
    if (!replica.synced) {
      // A replica that never held the hub's tree has nothing to mount: wait for the first snapshot.
      ctx.log('bridge: waiting for the hub\'s snapshot');
      const refused = this.refusedToken(client);
      try {
        await Promise.race([replica.whenSynced(), refused.promise]);
      } finally {
        refused.dispose();
      }
    }
  }

  /**
   * Rejects when the hub refuses the token. Only a start that cannot go on without the hub (the
   * first one, or one still waiting for its first snapshot) fails on it: there nothing would ever
   * mount, and retrying forever hid a wrong or missing token. A running mount keeps retrying.
   */
  private refusedToken(client: BridgeClient): { promise: Promise<never>; dispose(): void } {
    let onDisconnect: (d: { code: number; reason: string }) => void = () => undefined;
    const promise = new Promise<never>((_resolve, reject) => {
      onDisconnect = ({ code, reason }) => {
        if (code !== CLOSE_AUTH_FAILED) return;
        const hint = this.opts.token ? 'give the hub\'s token' : 'no token is set: give the hub\'s token';
        reject(new AetherError('BRIDGE_AUTH_FAILED', `the hub ${this.urls.join(' / ')} refused the token (${reason || 'refused'}); ${hint} with --token or AFS_AETHER_BRIDGE_TOKEN`));
      };
      client.on('disconnect', onDisconnect);
    });
    promise.catch(() => undefined);
    return { promise, dispose: () => client.off('disconnect', onDisconnect) };
  }

  private newClient(ctx: RemoteOpenContext, identity: MountIdentity, followFrom: number | undefined): BridgeClient {
    return new BridgeClient({
      url: this.urls,
      token: this.opts.token,
      mountId: identity.mountId,
      backoff: this.backoff!,
      registry: followFrom === undefined ? undefined : ctx.registry,
      log: (l) => ctx.log(`bridge: ${l}`),
      ...(followFrom !== undefined ? { followFrom } : {}),
      ...(identity.hubId !== undefined ? { followHubId: identity.hubId } : {}),
    });
  }

  private onClientState(s: BridgeState): void {
    if (this.stateValue === 'stopping') return;
    if (s === 'connecting') this.stateValue = 'connecting';
    else if (s === 'online') this.stateValue = 'online';
    else if (s === 'backing-off') this.stateValue = 'backing off';
    else if (s === 'refused') this.stateValue = 'refused';
  }

  /** Persists the inode range the hub assigned (once) and the hub the cursor belongs to. */
  private noteWelcome(w: WelcomeFrame): MountIdentity {
    const id = this.identity!;
    if (id.inoBase !== undefined && id.inoBase !== w.inoBase) {
      this.log(`bridge: the hub assigned inode base ${w.inoBase}, this mount numbers from ${id.inoBase} (another hub?); keeping ${id.inoBase}`);
    }
    if (id.inoBase === undefined || id.hubId !== w.hubId) {
      this.identity = { ...id, mountNo: id.mountNo ?? w.mountNo, inoBase: id.inoBase ?? w.inoBase, hubId: w.hubId };
      saveIdentity(this.stateDir, this.identity);
    }
    return this.identity ?? id;
  }

  get committedJournalSeq(): number {
    return this.replica.ownJournalSeq;
  }

  get committed(): ContentSource {
    return this.replica.content;
  }

  get maxIno(): number {
    return this.replica.maxOwnIno;
  }

  loadInto(view: MemoryMeta, cache: FileCache): void {
    const replica = this.replica;
    this.view = view;
    this.cache = cache;
    replica.loadInto(view);
    const shipped = (this.shipped = new MemoryMeta());
    replica.loadInto(shipped);
    // From here on, other mounts' changes reach the view as they reach the replica.
    const remote = new RemoteApply({
      view,
      shipped,
      cache,
      log: this.log,
      editedLocally: (ino) => this.localEdits.has(ino),
      inUse: (ino) => this.localEdits.has(ino) || (this.vfs?.isOpen(ino) ?? false),
      removedHere: (ino) => this.removedHere.has(ino),
      diverged: () => this.mayDiverge(),
      hub: replica,
    });
    replica.keepBase = (ino, removed) => this.localEdits.has(ino) || (removed && (this.vfs?.isOpen(ino) ?? false));
    // Files edited here whose version the replica replaced before a restart: the journal's
    // changes replay onto the version they were made on, and the replica's shows once settled.
    // A file another mount removed keeps its inode here, without a name, until the changes ship.
    for (const base of replica.baseInodes) {
      const inode = view.getInode(base.ino);
      if (inode?.kind === 'file') view.putInode({ ...inode, size: base.size });
      else if (!inode) view.putInode({ ...base, nlink: 0 });
      view.markAllocated(base.ino, 0, base.size);
      remote.keptFromView(base.ino);
    }
    // After each change to the view's names that another mount made: Vfs.hideReplacedOpen.
    replica.onRemoteOps = (ops) => {
      const replaced = namesReplaced(view, ops);
      const renamed = renamedFrom(view, ops);
      remote.apply(ops);
      this.vfs?.moveNodes(renamedTo(view, ops, renamed));
      this.vfs?.hideReplacedOpen();
      this.vfs?.invalidateNames(replaced);
      // Not a file edited here: the view keeps this mount's version of it (settling shows the other).
      // A new link too: its other names' attributes were cached with one link.
      const changed = new Set(ops.flatMap((op) => ((op.t === 'content' && !this.localEdits.has(op.ino)) || op.t === 'setattr' || op.t === 'link' ? [op.ino] : [])));
      // Their names too: a file opened right after kept the size the kernel had cached for its
      // name (up to 1 s), and a read through it stopped there (a fuzz seed's descriptor read it so).
      // The kernel knows the view's names, which differ from the replica's after a local rename
      // not yet shipped (fuzz seed 6443).
      this.vfs?.invalidateOpen(changed, viewPaths(view, changed, (ino) => replica.pathOf(ino)));
    };
    replica.onSnapshot = (base, next) => {
      this.snapshotsMerged++;
      remote.snapshot(base, next, this.drain?.inFlightOps ?? []);
      this.vfs?.hideReplacedOpen();
      this.vfs?.invalidateOpen('all');
      this.mayDiverge();
    };
    this.remote = remote;
  }

  /**
   * The last descriptor of `ino` closed. A named file whose base came from its conflict copy, kept
   * for those descriptors (their writes go to the copy), follows the hub again: its name had come
   * back (the hub skipped this mount's unlink of it) while the base stayed, and it showed the
   * copy's content, and sent later edits to the copy (a review reproduced it).
   */
  closed(ino: Ino): void {
    const replica = this.replica;
    if (!replica.onCopy(ino) || this.localEdits.has(ino) || (this.view?.getInode(ino)?.nlink ?? 0) === 0) return;
    void replica
      .dropBase(ino)
      .then(() => {
        this.remote?.keptFromView(ino);
        this.remote?.settled(ino, replica);
      })
      .catch((err: unknown) => this.log(`bridge: could not drop the base version of inode ${ino}: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** An inode with local changes not yet acknowledged stays, named or not, until they are. */
  holdsInode(ino: Ino): boolean {
    return this.localEdits.has(ino) || this.namelessAtReplay.has(ino);
  }

  /** Removed (here or at the hub), still open here. */
  private namelessOpen(ino: Ino): boolean {
    return this.view?.getInode(ino)?.nlink === 0 && (this.vfs?.isOpen(ino) ?? false);
  }

  localOp(op: Op, seq: number): void {
    // Live, the view holds what the replica holds. Replayed at a start (no drain yet), the entry was
    // made on the cursor the replica's marks name: remote changes that arrived after it, before the
    // crash, were not seen by it.
    const replica = this.replicaValue;
    const cursor = (this.drain ? replica?.cursor : (replica?.baseFor(seq) ?? replica?.cursor)) ?? 0;
    if (op.t === 'write' || op.t === 'truncate') {
      const e = this.localEdits.get(op.ino);
      if (e) e.lastSeq = seq;
      else this.localEdits.set(op.ino, { base: cursor, lastSeq: seq });
    } else if (op.t === 'unlink' || op.t === 'rmdir' || op.t === 'rename') {
      // A file with local changes pending showed them, not the remote changes since their base:
      // removing or replacing it did not see those (the hub keeps such a file).
      const gone = op.t === 'rename' ? op.dstIno : op.ino;
      this.removals.set(seq, Math.min(cursor, (gone !== undefined ? this.localEdits.get(gone)?.base : undefined) ?? cursor));
      // The view still shows the file it removes at the hub (replayed onto a tree another mount
      // changed, it did not apply here, or removed another file by the name; or one name of a
      // hard link went): writes to it go on, and the hub keeps them (WireEntry.viewKept).
      const removed = op.t === 'rename' ? op.dstIno : op.ino;
      if (removed) this.removedHere.set(removed, seq);
      const view = this.view;
      if (removed && view && (view.getInode(removed)?.nlink ?? 0) > 0) this.viewKept.set(seq, namesOf(view, removed));
    }
    else if (op.t === 'mknode' && !this.drain && this.view?.getInode(op.ino)?.nlink === 0) this.namelessAtReplay.set(op.ino, seq);
    // The Vfs forgets an inode only when it is closed and has nothing left to ship.
    else if (op.t === 'forget') void replica?.dropBase(op.ino).catch((err: unknown) => this.log(`bridge: could not drop the base version of inode ${op.ino}: ${err instanceof Error ? err.message : String(err)}`));
  }

  startDrain(ctx: RemoteDrainContext): SyncDrain {
    const replica = this.replica;
    const vfs = (this.vfs = ctx.vfs);
    const failed = (what: string) => (err: unknown) => this.log(`bridge: could not ${what}: ${err instanceof Error ? err.message : String(err)}`);
    void replica.followJournal(ctx.journal).catch(failed('update the replica\'s journal marks'));
    // Bases of files whose local changes were acknowledged before a crash let go of them, and
    // the view (which started from the base) shows the replica's version.
    for (const { ino } of replica.baseInodes) {
      if (this.localEdits.has(ino)) continue;
      void replica.dropBase(ino).catch(failed(`drop the base version of inode ${ino}`));
      this.remote?.settled(ino, replica);
    }
    this.replayed.resolve();
    this.journal = ctx.journal;
    // Entries replayed onto a tree another mount changed meanwhile: checked once all is shipped.
    this.mayDiverge();
    this.drain = new BridgeDrain({
      journal: ctx.journal,
      client: this.client!,
      replica: this.replica,
      contentOf: (ino) => ctx.vfs.contentOf(ino),
      // Changes made on the version the hub kept in a conflict copy ship as made before it (base
      // 0): the hub diverts them to the copy. With the base they were made at, a write through a
      // descriptor open on a file another mount had changed overwrote that mount's change at the
      // hub with this mount's version (reproduced: FUZZ_FDS seed 6105).
      contentBase: (ino) => (replica.onCopy(ino) ? 0 : this.localEdits.get(ino)?.base),
      opBase: (seq) => this.removals.get(seq),
      viewKept: (seq) => this.viewKept.get(seq),
      shipped: this.shipped!,
      beforeCommit: async (upTo, rs) => {
        const rebases: Promise<void>[] = [];
        for (const r of rs) {
          if (r.kind !== 'conflict-copy' && r.kind !== 'diverted') continue;
          // The hub deleted the file: it goes from the view here too, kept only while in use.
          this.remote?.unnameGone([r.ino]);
          // Changes made after the batch, or descriptors of a file removed at the hub, go on from
          // the copied version. Saved before the journal lets go of the batch: a restart replays
          // those changes onto it (a kill -9 in between replayed them onto the version before).
          // Asked of every file the batch changed, not only of those changed since: a write, or
          // another mount's removal, may land while the journal commits (onCommitted drops the
          // base again when neither holds).
          if (this.localEdits.has(r.ino) || this.namelessOpen(r.ino)) rebases.push(replica.rebase(r.ino, r.copyIno));
        }
        await Promise.all(rebases);
      },
      onCommitted: (seq) => {
        ctx.onCommitted(seq);
        for (const s of this.removals.keys()) if (s <= seq) this.removals.delete(s);
        for (const [ino, s] of this.removedHere) if (s <= seq) this.removedHere.delete(ino);
        for (const s of this.viewKept.keys()) if (s <= seq) this.viewKept.delete(s);
        const released: Ino[] = [];
        const resynced = new Set<Ino>();
        const named: Ino[] = [];
        for (const [ino, s] of this.namelessAtReplay) {
          if (s > seq) continue;
          this.namelessAtReplay.delete(ino);
          named.push(ino);
        }
        // Acknowledged: from now on remote changes to these files show again, and those kept
        // from the view meanwhile show now (the replica holds at least this batch).
        for (const [ino, e] of this.localEdits) {
          if (e.lastSeq > seq) continue;
          this.localEdits.delete(ino);
          released.push(ino);
          // Removed at the hub but still open here: its descriptors read the base until closed.
          if (!this.namelessOpen(ino)) void replica.dropBase(ino).catch(failed(`drop the base version of inode ${ino}`));
          if (this.remote?.settled(ino, replica)) resynced.add(ino);
        }
        // Removed meanwhile (here or by another mount), closed and not placed elsewhere by the
        // batch's resolutions (which run right after this): it goes.
        queueMicrotask(() => {
          for (const ino of named) this.remote?.nameAsCommitted(ino, replica);
          for (const ino of [...named, ...released]) vfs.forgetUnused(ino);
          vfs.hideReplacedOpen();
          // Settled: remote changes kept from the view meanwhile show now.
          vfs.invalidateOpen(resynced);
        });
      },
      onResolutions: (rs, ops) => {
        this.mayDiverge();
        for (const r of rs) {
          this.log(`bridge: hub resolution: ${JSON.stringify(r)}`);
          if (r.kind === 'skipped') this.noteSkipped(r.jseq, r.reason);
        }
        for (const ino of this.remote?.resolve(rs, this.replica, ops) ?? []) vfs.forgetUnused(ino);
        vfs.hideReplacedOpen();
        vfs.invalidateOpen(new Set(rs.flatMap((r) => (r.kind === 'conflict-copy' || r.kind === 'diverted' ? [r.ino, r.copyIno] : []))));
      },
      log: this.log,
      diverged: () => this.mayDiverge(),
    });
    return this.drain;
  }

  private mayDiverge(): void {
    this.divergent = true;
    this.armAlign(100);
  }

  private armAlign(ms: number): void {
    if (this.alignTimer || this.isStopping()) return;
    this.alignTimer = setTimeout(() => {
      this.alignTimer = undefined;
      try {
        this.alignIfQuiet();
      } catch (err) {
        // The mount serves on as it was; the next divergence tries again.
        this.log(`bridge: could not align the view with the hub's tree: ${err instanceof Error ? err.message : String(err)}`);
      }
    }, ms);
    this.alignTimer.unref();
  }

  /**
   * With nothing left to ship and nothing in flight, the view must name and hold exactly what the
   * replica does: remote changes and the hub's resolutions are mirrored op by op, and when two
   * mounts change the same names at once a later local op can leave the mirror wrong (a name the
   * hub gave a conflict copy that a later local op removed here only, a directory's entries under
   * another one after renames on both sides). The view and the shipped tree are then brought in
   * line with the replica, in one turn (no file system request runs in between); clean cached
   * data of files whose size or time changed goes.
   */
  private alignIfQuiet(): void {
    if (!this.divergent || this.isStopping()) return;
    const { journal, drain, view, shipped, vfs, cache } = this;
    if (!journal || !drain || !view || !shipped || !vfs || !cache) return;
    // Every entry acknowledged, and in the replica (a duplicate ack may come before its entry, from
    // a hub that has not heard of it; the drain notes batches a snapshot brought).
    const quiet =
      journal.lastSeq === journal.committedSeq &&
      this.replica.ownJournalSeq >= journal.committedSeq &&
      drain.inFlightOps.length === 0 &&
      !this.replica.applying &&
      this.localEdits.size === 0 &&
      this.namelessAtReplay.size === 0;
    if (!quiet) return this.armAlign(250);
    this.divergent = false;
    const committed = this.replica.tree();
    const r = alignTree(view, committed, (ino) => vfs.isOpen(ino));
    alignTree(shipped, committed, () => false);
    vfs.hideReplacedOpen();
    for (const ino of r.contentChanged) void cache.invalidate(ino).catch((err: unknown) => this.log(`bridge: cache invalidate of inode ${ino}: ${String(err)}`));
    for (const ino of r.dropped) void cache.remove(ino).catch(() => undefined);
    vfs.invalidateOpen(new Set([...r.contentChanged, ...r.changed]));
    // Directory times alone differ after most resolutions: set, but not a repair worth a log line.
    if (!alignedNothing(r)) this.noteRepair(r);
  }

  private noteRepair(r: AlignResult): void {
    this.repairs++;
    this.client?.metrics.viewRepairs.inc();
    this.lastRepair = { at: new Date().toISOString(), named: r.named.length, unnamed: r.unnamed.length, changed: r.changed.length, dropped: r.dropped.length };
    const few = (xs: readonly unknown[]): string => xs.slice(0, 8).join(', ') + (xs.length > 8 ? ', ...' : '');
    this.log(
      `bridge: the view differed from the hub's tree with nothing pending and now follows it: ` +
        `${r.named.length} name(s) added [${few(r.named)}], ${r.unnamed.length} removed [${few(r.unnamed)}], ` +
        `${r.changed.length} inode(s) changed [${few(r.changed)}], ${r.dropped.length} dropped [${few(r.dropped)}]`,
    );
  }

  /** An op the hub did not apply: the operator sees it in the metrics and `aether status`. */
  private noteSkipped(jseq: number, reason: string): void {
    this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + 1);
    this.lastSkipped = { journal_seq: jseq, reason };
    this.client?.metrics.opsSkipped.inc({ reason });
  }

  /**
   * Applies the changefeed to the replica in order. An event that fails (its chunks could not be
   * fetched, the disk is full) is retried, with growing pauses, until it applies: skipping it would
   * leave a gap that every later entry refuses. While it waits the feed queue fills and the client
   * stops reading from the socket.
   */
  private async runFeed(): Promise<void> {
    const client = this.client!;
    const replica = this.replica;
    for await (const e of client.feed()) {
      // The first snapshot applies at once: the mount cannot start without it (and has no journal yet).
      if (replica.synced) await this.replayed.promise;
      if (this.isStopping()) return;
      for (let attempt = 0; ; attempt++) {
        try {
          await replica.apply(e, (hashes) => this.fetchChunks(hashes));
          this.feedError = null;
          if (e.kind === 'entry' || e.kind === 'snapshot-end') this.reclaimer?.afterCommit();
          break;
        } catch (err) {
          if (this.isStopping()) return;
          if (isAetherError(err, 'BRIDGE_CHUNKS_GONE')) {
            // Reclaimed at the hub after its grace period (this mount fell that far behind): what
            // the hub has now comes as a snapshot, merged as any snapshot while mounted.
            this.log(`bridge: ${err.message}; following the hub again from a snapshot`);
            this.resyncs++;
            client.resync();
            break;
          }
          this.feedError = err instanceof Error ? err.message : String(err);
          this.log(`bridge: changefeed (${e.kind}), attempt ${attempt + 1}: ${this.feedError}; retrying`);
          await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
          if (this.isStopping()) return;
        }
      }
    }
  }

  /** Chunks for a changefeed entry: this mount's own batch in flight has them, the rest come from the hub. */
  private async fetchChunks(hashes: string[]): Promise<Map<string, Buffer>> {
    const got = new Map<string, Buffer>();
    const rest: string[] = [];
    for (const h of hashes) {
      const own = this.drain?.uploadedChunk(h);
      if (own) got.set(h, own);
      else rest.push(h);
    }
    if (rest.length) for (const [h, c] of await this.client!.fetchChunks(rest)) got.set(h, c);
    return got;
  }

  status(): Record<string, unknown> {
    return {
      state: this.stateValue,
      hub_url: this.client?.url ?? this.urls[0],
      hub_urls: this.urls,
      connected: this.client?.state === 'online',
      // Why not, and since when: what `sync wait` and an operator need when nothing drains.
      problem: this.client?.problem ?? null,
      offline_since: this.client?.offlineSinceMs != null ? new Date(this.client.offlineSinceMs).toISOString() : null,
      last_heard: this.client?.lastHeardMs != null ? new Date(this.client.lastHeardMs).toISOString() : null,
      cursor: this.replicaValue?.cursor ?? 0,
      mount_id: this.identity?.mountId ?? null,
      mount_no: this.identity?.mountNo ?? null,
      ino_base: this.identity?.inoBase ?? null,
      acked_journal_seq: this.client?.appliedSeq ?? 0,
      feed_error: this.feedError,
      snapshots_merged: this.snapshotsMerged,
      view_repairs: { total: this.repairs, last: this.lastRepair },
      resyncs: this.resyncs,
      skipped_ops: { total: [...this.skipped.values()].reduce((a, b) => a + b, 0), by_reason: Object.fromEntries(this.skipped), last: this.lastSkipped },
    };
  }

  private isStopping(): boolean {
    return this.stateValue === 'stopping';
  }

  /** `aether store reclaim`: the replica's space, now. */
  reclaimSpace(): Promise<ReclaimResult> {
    if (!this.reclaimer) throw new AetherError('BRIDGE_CLOSED', 'the bridge is not open');
    return this.reclaimer.runNow();
  }

  stopping(): void {
    this.stateValue = 'stopping';
    clearTimeout(this.alignTimer);
  }

  async close(): Promise<void> {
    this.stateValue = 'stopping';
    clearTimeout(this.alignTimer);
    this.replayed.resolve();
    await this.drain?.close();
    await this.client?.close();
    await this.feedLoop;
    await this.reclaimer?.close();
    this.backoff?.close();
    this.replicaValue?.close();
  }
}

/**
 * The paths naming `inos` in the view: each one's name in the replica (`hint`) when the view has
 * it there, else up to VIEW_KEPT_NAMES_MAX names found by one scan of the view for all of them (a
 * file renamed here, or under a directory renamed here, not yet shipped). Files without a name in
 * the view have none to drop.
 */
function viewPaths(view: MemoryMeta, inos: Iterable<Ino>, hint: (ino: Ino) => string | undefined): string[] {
  const out: string[] = [];
  const unresolved = new Set<Ino>();
  for (const ino of inos) {
    if ((view.getInode(ino)?.nlink ?? 0) === 0) continue;
    const path = hint(ino);
    if (path !== undefined && resolvePath(view, path) === ino) out.push(path);
    else unresolved.add(ino);
  }
  if (unresolved.size === 0) return out;
  const found = new Map<Ino, number>();
  const dirs = new Map<Ino, string | undefined>();
  for (const [dir, entries] of view.dirs) {
    for (const [name, ino] of entries) {
      if (!unresolved.has(ino) || (found.get(ino) ?? 0) >= VIEW_KEPT_NAMES_MAX) continue;
      found.set(ino, (found.get(ino) ?? 0) + 1);
      if (!dirs.has(dir)) dirs.set(dir, view.pathOfDir(dir));
      const at = dirs.get(dir);
      if (at !== undefined) out.push(`${at === '/' ? '' : at}/${name}`);
    }
  }
  return out;
}

function resolvePath(view: MemoryMeta, path: string): Ino | undefined {
  let at: Ino | undefined = ROOT_INO;
  for (const name of path.split('/')) if (name !== '' && at !== undefined) at = view.lookup(at, name);
  return at;
}

/**
 * The view's paths of the names `ops` remove or give to other files (an unlink's, an rmdir's, a
 * rename's two), taken before they apply, as libfuse still names its nodes: the kernel drops the
 * attributes it cached for them (Vfs.invalidateNames), or a stat of a name another mount had
 * renamed away answered for up to the entry timeout (1 s).
 */
function namesReplaced(view: MemoryMeta, ops: readonly WireOp[]): string[] {
  const dirs = new Map<Ino, string | undefined>();
  const pathOf = (dir: Ino, name: string): string | undefined => entryPath(view, dirs, dir, name);
  const out: string[] = [];
  for (const op of ops) {
    const names = op.t === 'unlink' || op.t === 'rmdir' ? [pathOf(op.parent, op.name)] : op.t === 'rename' ? [pathOf(op.parent, op.name), pathOf(op.newParent, op.newName)] : [];
    for (const p of names) if (p !== undefined) out.push(p);
  }
  return out;
}

/** The view's path of `name` in directory `dir`, caching directory paths in `dirs`. */
function entryPath(view: MemoryMeta, dirs: Map<Ino, string | undefined>, dir: Ino, name: string): string | undefined {
  if (!dirs.has(dir)) dirs.set(dir, view.pathOfDir(dir));
  const at = dirs.get(dir);
  return at === undefined ? undefined : `${at === '/' ? '' : at}/${name}`;
}

/** The view's paths of the entries `ops` rename, before they apply (Vfs.moveNodes). */
function renamedFrom(view: MemoryMeta, ops: readonly WireOp[]): Map<Ino, string> {
  const dirs = new Map<Ino, string | undefined>();
  const out = new Map<Ino, string>();
  for (const op of ops) {
    if (op.t !== 'rename' || op.flags & RENAME_EXCHANGE || out.has(op.ino) || view.lookup(op.parent, op.name) !== op.ino) continue;
    const path = entryPath(view, dirs, op.parent, op.name);
    if (path !== undefined) out.set(op.ino, path);
  }
  return out;
}

/** [old path, new path, inode] of the entries renamed (`before`: renamedFrom) that the view now has where the last rename put them. */
function renamedTo(view: MemoryMeta, ops: readonly WireOp[], before: ReadonlyMap<Ino, string>): [string, string, Ino][] {
  if (before.size === 0) return [];
  const last = new Map<Ino, { newParent: Ino; newName: string }>();
  for (const op of ops) if (op.t === 'rename' && before.has(op.ino)) last.set(op.ino, op);
  const dirs = new Map<Ino, string | undefined>();
  const out: [string, string, Ino][] = [];
  for (const [ino, { newParent, newName }] of last) {
    if (view.lookup(newParent, newName) !== ino) continue;
    const to = entryPath(view, dirs, newParent, newName);
    if (to !== undefined && to !== before.get(ino)) out.push([before.get(ino)!, to, ino]);
  }
  return out;
}

/** Up to VIEW_KEPT_NAMES_MAX names of `ino` in `tree` (a scan: only removals of files still named elsewhere ask). */
function namesOf(tree: MemoryMeta, ino: Ino): [Ino, string][] {
  const out: [Ino, string][] = [];
  for (const [dir, entries] of tree.dirs) {
    for (const [name, at] of entries) {
      if (at !== ino) continue;
      out.push([dir, name]);
      if (out.length >= VIEW_KEPT_NAMES_MAX) return out;
    }
  }
  return out;
}
