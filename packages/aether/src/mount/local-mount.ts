import { spawnSync } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import type { ConfigStore } from '../config/store.js';
import { renderShowJson } from '../config/show.js';
import { ControlServer, type Handler } from '../control/server.js';
import { CONTROL_SOCKET_NAME, type CommandName } from '../control/protocol.js';
import { createRegistry } from '../metrics/registry.js';
import { MetricsServer } from '../metrics/server.js';
import { FileCache } from '../runtime/cache/index.js';
import { BackpressureCoordinator } from '../runtime/infra/backpressure/index.js';
import { systemClock } from '../runtime/infra/clock.js';
import { inspectJournal, Journal, journalOptionsFromConfig, observeJournalConfig } from '../runtime/journal/index.js';
import { StoreWriterClient } from '../store/store-client.js';
import { Store } from '../store/store.js';
import { AetherError } from '../errors.js';
import { MemoryMeta } from '../tree/meta.js';
import { decodeOp, OP_RECORD_TYPE, type Ino } from '../tree/ops.js';
import { cacheClear, cacheInspect } from './commands/cache.js';
import type { RemoteBackend, SyncDrain } from './backend.js';
import { watchConfigFile } from './config-watch.js';
import { LocalDrain } from './drain.js';
import { SpaceReclaimer } from './space-reclaimer.js';
import { watchSession } from './session-watch.js';
import { refuseAllowOtherWithoutConf, refuseUnusableMountpoint, refuseWithoutFuseDevice } from './mountpoint.js';
import { ensureStateDir, refuseLongSocketPath, refuseStateDirUnder, StateLock, writable } from './state-lock.js';
import { callerContext, claimBindingAttrs, reserveFileSpace, claimBindingSync, FuseMount, guardHardLinkAttributes, hideNode, invalidateNodes, moveNodes, releaseFreedMemory, setAttributesUncached } from './fuse-binding.js';
import { IDLE_TRIM_MS, IdleTrim } from './idle-trim.js';
import { FuseMetrics } from './fuse-metrics.js';
import { fuseHandlers } from './fuse-ops.js';
import { Vfs } from './vfs.js';

/** What the kernel and the binding may keep of the tree, by mode. */
interface Caching {
  /** Names and attributes in the kernel. */
  seconds: number;
  /** Absent names in the kernel. */
  negativeSeconds: number;
  /** The binding answers getattr with attributes handed over after each change (BindingAttrs). */
  bindingAttrs: boolean;
}

/**
 * Local mode: every change to the tree goes through this kernel and these handlers, so the kernel
 * may keep names, attributes and the absence of names for a minute, and the binding may answer
 * with what the last change handed over. Bridge mode: RemoteBackend.kernelCacheSeconds, no
 * absent names, nothing in the binding (other mounts change the tree behind both).
 */
const LOCAL_CACHING: Caching = { seconds: 60, negativeSeconds: 60, bindingAttrs: true };

/** How long the event loop keeps polling after a FUSE request (LoopSpin; measured in FUSE.md). */
const LOOP_SPIN_MICROS = 500;

/**
 * V8's old-generation growth, as a percentage (1 + p/100 times the live heap between full
 * collections). A mount's heap is small (~9 MB) while programs write fast, and V8's own factor
 * left less room than its new space holds, so it started a full marking again right after each
 * one: 22 full collections for a 256 MiB write. At 300: 9-10, and the mount's CPU for that write
 * 12-22% lower (measured in FUSE.md). Process-wide, read at every collection; a heap may grow to
 * 4x its live size between collections. A value the user gave node (NODE_OPTIONS) is kept.
 */
const HEAP_GROWING_PERCENT = 300;

function tuneHeapGrowth(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((a) => a.replace(/_/g, '-').startsWith('--heap-growing-percent'))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** Programs count as using the mount for this long after a request (the local drain waits for a pause). */
const BUSY_WINDOW_MS = 50;

export interface LocalMountOptions {
  mountpoint: string;
  config: ConfigStore;
  allowOther?: boolean;
  log?: (line: string) => void;
  /** Sync through a remote committed tree (a hub) instead of the embedded store. */
  remote?: RemoteBackend;
  /** Called just before the FUSE mount is made: from then on the process must not die without unmounting. */
  onMounting?: () => void;
  /**
   * Called once when the mount point was unmounted by someone else (fusermount -u, umount) while
   * the mount ran: nothing reaches it any more, and the process should stop as for SIGTERM.
   */
  onUnmountedOutside?: () => void;
}

export type MountState = 'starting' | 'online' | 'stopping' | 'stopped';

/** What asked for a configuration reload. */
export type ReloadTrigger = 'signal' | 'command' | 'file';

/**
 * A local-mode mount: FUSE over the Vfs, the journal draining into an embedded store in the same
 * process, the cache, backpressure, the control socket and the metrics endpoint (DESIGN §2).
 */
/** Store.open, its failure naming the database (SQLite's own messages name no file). */
function openStore(dir: string): Store {
  ensureStateDir(dir, 'store directory');
  ensureStateDir(join(dir, 'packs'), 'store directory');
  const db = join(dir, 'meta.sqlite');
  for (const file of [db, `${db}-wal`]) {
    if (existsSync(file) && !writable(file)) throw new AetherError('STORE_OPEN_FAILED', `store ${file} is not writable by this user (a read-only file system, or another user's)`);
  }
  try {
    return Store.open(dir);
  } catch (err) {
    throw new AetherError('STORE_OPEN_FAILED', `store ${join(dir, 'meta.sqlite')}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * How the journal reserves disk space (fallocate, from the patched addon). AETHER_TEST_JOURNAL_RESERVE=off
 * is a test seam: a file system that cannot reserve, where a full disk stops the journal (mountpoint.test.ts).
 */
function journalReserve(): typeof reserveFileSpace | undefined {
  return process.env.AETHER_TEST_JOURNAL_RESERVE === 'off' ? undefined : reserveFileSpace;
}

export class LocalMount {
  state: MountState = 'starting';
  private readonly log: (line: string) => void;
  private readonly registry: Registry = createRegistry();
  private readonly stateDir: string;
  private readonly mountpoint: string;
  private control: ControlServer | undefined;
  private lock: StateLock | undefined;
  private metricsServer: MetricsServer | undefined;
  private reclaimer: SpaceReclaimer | undefined;
  private store: Store | undefined;
  private storeWriter: StoreWriterClient | undefined;
  private journal: Journal | undefined;
  private cache: FileCache | undefined;
  private coordinator: BackpressureCoordinator | undefined;
  private drain: SyncDrain | undefined;
  private vfs: Vfs | undefined;
  private fuse: FuseMount | undefined;
  /** When the last FUSE request reached JS (performance.now()). */
  private lastRequestMs = -Infinity;
  private readonly cleanups: (() => void)[] = [];
  private readonly reloads = new Counter({
    name: 'aether_config_reloads_total',
    help: 'Configuration reloads by trigger (signal: SIGHUP, command: aether config reload, file: the TOML file changed) and outcome (error: the running configuration was kept, or a part could not take a new value, which the log names)',
    labelNames: ['trigger', 'outcome'],
    registers: [this.registry],
  });
  private readonly lastReload = new Gauge({
    name: 'aether_config_last_reload_success_timestamp_seconds',
    help: 'When the configuration was last reloaded successfully (seconds since the epoch; 0: not since start)',
    registers: [this.registry],
  });
  private stopping: Promise<void> | undefined;
  /** Stopping: every change is refused from now on. */
  private refusingWrites = false;
  /** Re-decides whether the binding may answer chown/chmod that change nothing. */
  private recheckUnchanged: (() => void) | undefined;
  metricsAddress: string | undefined;

  private constructor(private readonly opts: LocalMountOptions) {
    this.log = opts.log ?? ((line) => process.stderr.write(`aether: ${line}\n`));
    this.stateDir = resolve(opts.config.current.state_dir);
    this.mountpoint = resolve(opts.mountpoint);
  }

  static async start(opts: LocalMountOptions): Promise<LocalMount> {
    tuneHeapGrowth();
    const m = new LocalMount(opts);
    try {
      await m.open();
    } catch (err) {
      for (const f of await m.teardown()) m.log(`cleaning up after the failed start: ${f}`);
      throw err;
    }
    return m;
  }

  /** Writers wait while the cache's disk has less than cache_min_free_bytes free: said at start, or a small disk looks like a hang. */
  private warnIfLowOnDisk(cache: FileCache): void {
    const min = this.opts.config.current.backpressure.cache_min_free_bytes;
    const free = cache.stats().disk_free_bytes;
    const mib = (n: number): string => `${Math.floor(n / 1048576)} MiB`;
    if (min > 0 && free !== null && free < min) {
      this.log(`the state directory's disk has ${mib(free)} free, under cache_min_free_bytes (${mib(min)}): writes wait until there is more (lower [backpressure] cache_min_free_bytes, or 0 to turn this off)`);
    }
  }

  private async open(): Promise<void> {
    const config = this.opts.config;
    // First: a state directory left inside the mount point would make it "not empty".
    refuseStateDirUnder(this.stateDir, this.mountpoint);
    refuseLongSocketPath(join(this.stateDir, CONTROL_SOCKET_NAME));
    await refuseUnusableMountpoint(this.mountpoint);
    // AETHER_TEST_FUSE_DEVICE: a test seam (mountpoint.test.ts runs a mount as a user without access).
    refuseWithoutFuseDevice(process.env.AETHER_TEST_FUSE_DEVICE || undefined);
    refuseAllowOtherWithoutConf(this.opts.allowOther ?? false);
    ensureStateDir(this.stateDir);
    for (const sub of ['journal', 'cache']) ensureStateDir(join(this.stateDir, sub), `${sub} directory`);
    // The lock first: a second mount on the same state directory stops here.
    this.lock = StateLock.acquire(this.stateDir);
    const handlers: Partial<Record<CommandName, Handler>> = {};
    this.control = new ControlServer(join(this.stateDir, CONTROL_SOCKET_NAME), handlers);
    await this.control.listen();

    collectDefaultMetrics({ register: this.registry, prefix: 'aether_' });
    if (this.opts.remote) return this.openRemote(this.opts.remote, handlers);
    const store = (this.store = openStore(join(this.stateDir, 'store')));

    const journal = (this.journal = await Journal.open({ ...journalOptionsFromConfig(config.current), dir: join(this.stateDir, 'journal'), registry: this.registry, reserve: journalReserve() }));
    if (journal.recovery.tornTail) this.log(`journal: cut a torn tail at recovery (${JSON.stringify(journal.recovery.tornTail)})`);
    const applied = store.appliedSeq;
    if (applied > journal.lastSeq) throw new Error(`state ${this.stateDir}: the store holds journal entry ${applied} but the journal ends at ${journal.lastSeq}`);
    // The store commits an entry before the journal marks it committed: a store behind that mark
    // lost committed data (its database missing, or rolled back with its -wal gone). Mounting it
    // would show a tree without that data and let reclaim delete the packs that still hold it.
    if (applied < journal.committedSeq) {
      throw new AetherError('STORE_CORRUPT', `state ${this.stateDir}: the store (${join(this.stateDir, 'store', 'meta.sqlite')}) holds journal entries up to ${applied}, but entries up to ${journal.committedSeq} were committed to it: its database is missing or damaged; refusing to mount (restore it from a backup)`, { context: { applied, committed: journal.committedSeq } });
    }
    if (applied > journal.committedSeq) await journal.commit(applied);

    // The drain puts data in the store before it commits the journal: written data need not stay cached.
    const cache = (this.cache = await FileCache.open({ dir: join(this.stateDir, 'cache'), registry: this.registry, config, committedSeq: journal.committedSeq, dropCommittedWrites: true }));

    const view = new MemoryMeta();
    store.loadInto(view);
    const coordinator = (this.coordinator = new BackpressureCoordinator({ registry: this.registry, config, journal, cache }));
    this.warnIfLowOnDisk(cache);
    const vfs = (this.vfs = new Vfs({ view, committed: store, journal, cache, gate: coordinator.gate, clock: systemClock, maxIno: store.maxIno, log: this.log, attributesUncached: setAttributesUncached, cacheReads: false }));
    const touched = await this.replay(vfs, journal, store.appliedSeq);
    // Files left open but unlinked by a crash go now, with their chunks; those that entries not yet
    // drained still write to stay for those entries, and end through the journal (forgetOrphans).
    for (const ino of store.purgeOrphans(touched)) {
      view.deleteInode(ino);
      await cache.remove(ino);
    }
    store.collectChunks();
    const damaged = store.chunks.damagedPacks();
    if (damaged.length > 0) {
      const what = damaged.slice(0, 3).map((d) => `${d.path} ${d.bytes < 0 ? 'missing' : `has ${d.bytes} of ${d.needed} bytes`}`);
      this.log(`store: ${damaged.length} pack file(s) are missing or cut short (${what.join('; ')}${damaged.length > 3 ? '; …' : ''}): files with data there read EIO until it is written again; \`aether store verify\` names them`);
    }
    await vfs.forgetOrphans();

    const writer = (this.storeWriter = new StoreWriterClient(join(this.stateDir, 'store'), store.appliedSeq));
    const reclaimer = (this.reclaimer = new SpaceReclaimer(
      { reclaim: (budget) => writer.reclaim(budget), forgetPacks: (packs) => store.chunks.forgetPacks(packs), packBytes: () => store.chunks.packBytes(), quiet: () => performance.now() - this.lastRequestMs > IDLE_TRIM_MS },
      this.registry,
      this.log,
    ));
    const drain = (this.drain = new LocalDrain(
      journal,
      writer,
      (seq) => {
        cache.commit(seq);
        vfs.committed(seq);
        reclaimer.afterCommit();
      },
      this.log,
      // Not while writers wait at the gate: their wait would grow.
      { busy: () => performance.now() - this.lastRequestMs < BUSY_WINDOW_MS && coordinator.gate.isOpen },
    ));
    this.cleanups.push(journal.onPendingChange(() => drain.kick()));
    this.cleanups.push(observeJournalConfig(config, journal, (err) => this.log(`journal sync switch: ${String(err)}`)));
    drain.kick();

    await this.finishOpen(drain, vfs, handlers, LOCAL_CACHING);
  }

  /**
   * Bridge mode: the committed tree is the remote backend's replica; its drain ships the journal.
   * The same view, journal, cache, backpressure and FUSE as local mode.
   */
  private async openRemote(remote: RemoteBackend, handlers: Partial<Record<CommandName, Handler>>): Promise<void> {
    const config = this.opts.config;
    await remote.open({ stateDir: this.stateDir, registry: this.registry, config, log: this.log });
    const journal = (this.journal = await Journal.open({ ...journalOptionsFromConfig(config.current), dir: join(this.stateDir, 'journal'), registry: this.registry, reserve: journalReserve() }));
    if (journal.recovery.tornTail) this.log(`journal: cut a torn tail at recovery (${JSON.stringify(journal.recovery.tornTail)})`);
    const acked = remote.committedJournalSeq;
    if (acked > journal.lastSeq) throw new Error(`state ${this.stateDir}: the hub holds journal entry ${acked} of this mount but the journal ends at ${journal.lastSeq}`);
    // Acknowledged by the hub and in the replica, but the crash came before the journal noted it.
    if (acked > journal.committedSeq) await journal.commit(acked);
    const cache = (this.cache = await FileCache.open({ dir: join(this.stateDir, 'cache'), registry: this.registry, config, committedSeq: journal.committedSeq }));
    const view = new MemoryMeta();
    remote.loadInto(view, cache);
    const coordinator = (this.coordinator = new BackpressureCoordinator({ registry: this.registry, config, journal, cache }));
    this.warnIfLowOnDisk(cache);
    const vfs = (this.vfs = new Vfs({ view, committed: remote.committed, journal, cache, gate: coordinator.gate, clock: systemClock, maxIno: remote.maxIno, log: this.log, attributesUncached: setAttributesUncached, localOp: (op, seq) => remote.localOp?.(op, seq), holdInode: (ino) => remote.holdsInode?.(ino) ?? false, closed: (ino) => remote.closed?.(ino), replayOnMovedTree: true, hideNode, moveNodes: (moves) => moveNodes(this.mountpoint, moves), invalidateNodes }));
    await this.replay(vfs, journal, journal.committedSeq);
    await vfs.forgetOrphans();
    const drain = (this.drain = remote.startDrain({
      journal,
      cache,
      vfs,
      view,
      onCommitted: (seq) => {
        cache.commit(seq);
        vfs.committed(seq);
      },
    }));
    this.cleanups.push(journal.onPendingChange(() => drain.kick()));
    this.cleanups.push(observeJournalConfig(config, journal, (err) => this.log(`journal sync switch: ${String(err)}`)));
    drain.kick();
    await this.finishOpen(drain, vfs, handlers, { seconds: remote.kernelCacheSeconds, negativeSeconds: 0, bindingAttrs: false });
  }

  /** Metrics, FUSE and the control handlers: the same in both modes. */
  private async finishOpen(drain: SyncDrain, vfs: Vfs, handlers: Partial<Record<CommandName, Handler>>, kernelCache: Caching): Promise<void> {
    const config = this.opts.config;
    this.metricsServer = new MetricsServer(this.registry);
    const listen = config.current.metrics_listen;
    this.metricsAddress = await this.metricsServer.listen(listen).catch((err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is in use by another process' : err.code === 'EADDRNOTAVAIL' ? 'no interface of this machine has that address' : err.message;
      throw new AetherError('MOUNT_OPTION_INVALID', `metrics_listen=${listen}: ${why} (choose another host:port in metrics_listen or AFS_AETHER_METRICS_LISTEN, port 0 for a free one, or off)`, { cause: err });
    });
    new Gauge({ name: 'aether_sync_paused', help: '1 while draining is paused (SYNC PAUSE)', registers: [this.registry], collect() {
      this.set(drain.paused ? 1 : 0);
    } });
    // A failed journal write stops every change for good: say so once, plainly, with what to do.
    const journal = this.journal!;
    let told = false;
    this.cleanups.push(
      journal.onPendingChange(() => {
        if (told || !journal.failed) return;
        told = true;
        this.log(`${journal.failed.message}: the mount now refuses every change with that error; what is mounted stays readable. Fix the cause (free space under ${this.stateDir}) and restart the mount: changes that were refused may show until then and are gone after it`);
      }),
    );

    const attrGuard = guardHardLinkAttributes();
    if (!attrGuard) this.log('attribute caching is off: the patched binding could not hook libfuse here (FUSE.md), so every stat costs a round trip');
    const bindingAttrs = kernelCache.bindingAttrs ? claimBindingAttrs() : null;
    const fuseMetrics = new FuseMetrics(this.registry, bindingAttrs);
    // fsync(2) answered in the FUSE thread where the journal allows it (FUSE.md); what it answered
    // reaches the metrics before each scrape and once a second.
    const bindingSync = claimBindingSync();
    if (bindingSync) {
      journal.shareSyncs(bindingSync);
      const count = (): void => {
        const a = bindingSync.takeAnswers();
        fuseMetrics.countBindingSyncs(a);
        journal.countOutsideSyncs(a.fsync.ok + a.fsyncdir.ok, a.fsync.failed + a.fsyncdir.failed, a.samples.map((x) => x.seconds));
      };
      this.metricsServer.onScrape(count);
      const timer = setInterval(count, 1000).unref();
      this.cleanups.push(() => {
        clearInterval(timer);
        count();
        bindingSync.release();
      });
    }
    const fuse = (this.fuse = new FuseMount(
      this.mountpoint,
      fuseHandlers(vfs, fuseMetrics, { statfs: () => this.diskStats() }, { caller: callerContext }, bindingAttrs),
      {
        fsname: 'aether',
        subtype: 'aether',
        defaultPermissions: true,
        allowOther: this.opts.allowOther ?? false,
        bigWrites: true,
        // One request a MiB written or read ahead, where libfuse 2.9 gave eight (FUSE.md).
        maxWriteBytes: 1048576,
        readaheadKib: 1024,
        // Bridge mode: files change behind the kernel's back; an invalidated file's pages go at
        // its next read when its mtime changed (Vfs.invalidateOpen), not only when its size did.
        autoInvalData: this.opts.remote !== undefined,
        // Names and attributes are cached for kernelCache.seconds, except the attributes of
        // hard-linked files: libfuse's high-level API gives each name of such a file its own
        // kernel inode, so the patch answers them with timeout 0 (guardHardLinkAttributes,
        // posix.test.ts). Where that hook is missing no attribute is cached.
        attrTimeoutSeconds: attrGuard ? kernelCache.seconds : 0,
        entryTimeoutSeconds: kernelCache.seconds,
        // A lookup of a missing name (a build probing paths) is answered by the kernel: creating
        // the name goes through it, which replaces the negative entry.
        negativeTimeoutSeconds: kernelCache.negativeSeconds,
        // Keep a file's page cache across opens while its size and mtime are unchanged, checked
        // afresh at every open (ac_attr_timeout=0): repeated reads come from memory, yet a change
        // through another name of a hard-linked file is never served stale.
        autoCache: true,
        acAttrTimeoutSeconds: 0,
        useIno: true,
        // Reads never update access times (a journal record per first read after a change, and
        // in bridge mode a change to ship): said in /proc/mounts, as JuiceFS's default does.
        noatime: true,
      },
      { onHandlerError: (op, err) => this.log(`${op}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`), loopSpinMicros: LOOP_SPIN_MICROS, onRequest: () => (this.lastRequestMs = performance.now()), bindingAttrs, bindingSync },
    ));
    this.opts.onMounting?.();
    const { staleCleaned, readaheadUnset } = await fuse.mount();
    if (readaheadUnset !== undefined) this.log(`the mount's readahead stays at the kernel's 128 KiB (${readaheadUnset}): sequential reads take more requests`);
    if (staleCleaned) this.log(`cleaned a stale mount left at ${this.mountpoint} by a crashed process`);
    this.watchUnmountOutside(fuse);
    const unwatched = watchSession(this.mountpoint);
    if (unwatched !== undefined) this.log(`nothing will end this mount's FUSE session if the process dies stuck in the kernel (FUSE.md, Limits): ${unwatched}`);
    const trims = new Counter({ name: 'aether_memory_trims_total', help: 'Times the mount, quiet after work, collected its garbage and gave freed memory back to the system', registers: [this.registry] });
    const trimmed = new Counter({ name: 'aether_memory_trimmed_bytes_total', help: 'Resident memory those times gave back', registers: [this.registry] });
    const onTrim = (bytes: number): void => {
      trims.inc();
      trimmed.inc(bytes);
    };
    const idleTrim = new IdleTrim(() => this.lastRequestMs, releaseFreedMemory, onTrim, Number(process.env.AETHER_TEST_IDLE_TRIM_MS ?? IDLE_TRIM_MS));
    this.cleanups.push(journal.onPendingChange(() => idleTrim.active()));
    this.cleanups.push(() => idleTrim.stop());
    if (bindingAttrs) {
      // A chown or chmod that changes nothing is answered in the binding (FUSE.md) only while
      // the mount would accept it and its answer need not wait for the disk; re-checked at every
      // append (a failed journal, a switch to `immediate`) and at stop. Mounting bound it off.
      let allowed: boolean | undefined;
      const allow = (): void => {
        const on = !journal.failed && !this.refusingWrites && journal.syncSettings.policy !== 'immediate';
        if (on !== allowed) bindingAttrs.allowUnchanged((allowed = on));
      };
      allow();
      this.cleanups.push(journal.onPendingChange(allow));
      this.recheckUnchanged = allow;
    }
    Object.assign(handlers, this.controlHandlers());
    const file = config.file;
    if (file) {
      this.cleanups.push(
        watchConfigFile(
          file,
          () => {
            try {
              const r = this.reload('file');
              this.log(`${file} changed: configuration reloaded (changed: ${(r.changed_sections as string[]).join(', ') || 'nothing'})`);
            } catch {
              // reload() logged why, and the running configuration stays.
            }
          },
          this.log,
        ),
      );
    }
    this.state = 'online';
  }

  /** Re-applies journal entries not yet in the store to the view and the cache; returns the inodes they change by number. */
  private async replay(vfs: Vfs, journal: Journal, appliedSeq: number): Promise<Set<Ino>> {
    const touched = new Set<Ino>();
    for await (const e of journal.entries({ fromSeq: appliedSeq + 1 })) {
      if (e.type !== OP_RECORD_TYPE) continue;
      const op = decodeOp(e.payload);
      if (op.t === 'write' || op.t === 'truncate' || op.t === 'setattr' || op.t === 'link') touched.add(op.ino);
      await vfs.replay(e.seq, op);
    }
    return touched;
  }

  private diskStats(): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number } {
    const s = statfsSync(this.stateDir);
    return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
  }

  status(): Record<string, unknown> {
    const j = this.journal?.pending();
    return {
      mode: this.opts.remote?.mode ?? 'local',
      ...(this.opts.remote ? { bridge: this.opts.remote.status() } : {}),
      state: this.state,
      mountpoint: this.mountpoint,
      state_dir: this.stateDir,
      metrics_address: this.metricsAddress ?? 'off',
      sync: { state: this.drain?.paused ? 'paused' : 'running', backlog_entries: this.drain?.backlog ?? 0, last_error: this.drain?.lastError ?? null },
      journal: { pending_bytes: j?.pendingBytes ?? 0, pending_entries: j?.pendingEntries ?? 0, committed_seq: this.journal?.committedSeq ?? 0, last_seq: this.journal?.lastSeq ?? 0, failed: this.journal?.failed?.message ?? null },
      backpressure: this.coordinator?.status().status ?? 'clear',
      open_handles: this.vfs?.openHandles ?? 0,
      pid: process.pid,
    };
  }

  private controlHandlers(): Partial<Record<CommandName, Handler>> {
    const cache = this.cache!;
    const backpressure = this.coordinator!;
    const journal = this.journal!;
    const drain = this.drain!;
    return {
      STATUS: () => this.status(),
      'CACHE INSPECT': () => cacheInspect({ cache, backpressure }),
      'CACHE CLEAR': () => cacheClear({ cache, backpressure }),
      'STORE RECLAIM': () => {
        const remote = this.opts.remote;
        if (this.reclaimer) return this.reclaimer.runNow();
        if (remote?.reclaimSpace) return remote.reclaimSpace();
        throw new AetherError('CONTROL_BAD_REQUEST', 'this mount has no store to reclaim space in');
      },
      'JOURNAL INSPECT': async () => ({ ...(await inspectJournal({ stateDir: this.stateDir })), live: { ...journal.pending(), committed_seq: journal.committedSeq, durable_seq: journal.durableSeq, last_seq: journal.lastSeq } }),
      'JOURNAL FLUSH': async () => {
        await journal.flush();
        return { flushed: true, durable_seq: journal.durableSeq };
      },
      'BACKPRESSURE STATUS': () => backpressure.status(),
      'SYNC PAUSE': () => {
        drain.pause();
        return { sync: 'paused' };
      },
      'SYNC RESUME': () => {
        drain.resume();
        return { sync: 'running' };
      },
      'CONFIG SHOW': () => JSON.parse(renderShowJson(this.opts.config.current)) as unknown,
      'CONFIG RELOAD': () => this.reload(),
    };
  }

  /** Re-resolves the configuration and applies what changed live; `trigger` labels the reload metrics. */
  reload(trigger: ReloadTrigger = 'command'): Record<string, unknown> {
    const r = this.opts.config.reload();
    // A part that could not take its new settings fails the reload for the metric and the log
    // (file-watch and SIGHUP reloads have no reply to carry it).
    this.reloads.inc({ trigger, outcome: r.ok && r.observerErrors.length === 0 ? 'success' : 'error' });
    if (r.ok) for (const e of r.observerErrors) this.log(`configuration reload: ${e}`);
    if (!r.ok) {
      this.log(`configuration reload failed, keeping the running configuration: ${r.problems.join('; ')}`);
      throw new Error(`reload failed, running configuration kept: ${r.problems.join('; ')}`);
    }
    this.lastReload.set(Date.now() / 1000);
    for (const w of r.warnings) this.log(`warning: ${w}`);
    if (r.restartRequired.length) this.log(`changed settings that need a restart: ${r.restartRequired.join(', ')}`);
    return { reloaded: true, changed_sections: r.changed, restart_required: r.restartRequired, warnings: r.warnings, observer_errors: r.observerErrors };
  }

  /**
   * Stops cleanly: no new writes, drain for up to `graceMs`, flush the journal (reason
   * `shutdown`), unmount, close everything. Every step runs; if any failed (the shutdown flush
   * above all: acknowledged writes may then not be durable), rejects with MOUNT_STOP_FAILED
   * naming each, so the command exits non-zero.
   */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopping';
      this.opts.remote?.stopping();
      this.refusingWrites = true;
      this.recheckUnchanged?.();
      this.vfs?.stopWrites();
      this.coordinator?.gate.close('the mount is stopping');
      if (this.drain) {
        const timer = new Promise<void>((r) => systemClock.setTimeout(r, graceMs).unref?.());
        await Promise.race([this.drain.whenIdle(), timer]);
      }
      const failed = await this.teardown();
      this.state = 'stopped';
      if (failed.length) throw new AetherError('MOUNT_STOP_FAILED', `the mount stopped with errors: ${failed.join('; ')}`, { context: { failed } });
    })();
    return this.stopping;
  }

  /**
   * Checks every second whether the kernel ended the FUSE session: unmounted by someone else
   * (fusermount -u, umount; `umount -l` once the last program using the mount let go), libfuse's
   * loop ends and nothing told the process, which went on running, holding the state directory
   * (a second mount was refused) and showing `online`. Not by mountinfo: a lazily unmounted mount
   * still serves the programs inside it, and its device number goes to the next mount made.
   */
  private watchUnmountOutside(fuse: FuseMount): void {
    const timer = setInterval(() => {
      if (this.state !== 'online' || !fuse.sessionOver) return;
      clearInterval(timer);
      this.log(`${this.mountpoint} was unmounted by someone else (fusermount -u or umount): stopping`);
      this.opts.onUnmountedOutside?.();
    }, 1000);
    timer.unref();
    this.cleanups.push(() => clearInterval(timer));
  }

  /**
   * fuse-native unmounts through an asynchronous `fusermount -uz`; if its answer never comes, a
   * stop must not hang: detach the mount directly and go on closing the rest.
   */
  private async unmountWithin(ms: number): Promise<void> {
    const fuse = this.fuse;
    if (!fuse || fuse.state !== 'mounted') return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
    const r = await Promise.race([fuse.unmount(), timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.log(`unmount of ${this.mountpoint} did not finish in ${ms} ms; detaching it with fusermount -u -z`);
      for (const tool of ['fusermount3', 'fusermount']) if (spawnSync(tool, ['-u', '-z', this.mountpoint]).status === 0) break;
    }
  }

  /** Closes everything, each step whatever the others did; returns the steps that failed. */
  private async teardown(): Promise<string[]> {
    const failed: string[] = [];
    const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failed.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // unmountWithin skips a mount that never mounted (a refused, non-empty or busy mount point).
    await step('unmount', () => this.unmountWithin(10_000));
    await step('drain', () => this.drain?.close());
    for (const c of this.cleanups.splice(0)) c();
    await step('journal', () => this.journal?.close());
    await step('backpressure', () => this.coordinator?.close());
    await step('cache', () => this.cache?.close());
    await step('reclaim', () => this.reclaimer?.close());
    await step('store writer', () => this.storeWriter?.close());
    await step('store', () => this.store?.close());
    await step('remote', () => this.opts.remote?.close());
    await step('metrics', () => this.metricsServer?.close());
    await step('control', () => this.control?.close());
    this.lock?.release();
    return failed;
  }
}
