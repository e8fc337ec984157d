/**
 * Hub test helpers: in-process hubs on 127.0.0.1 port 0, hub child processes (for kill -9), a raw
 * WebSocket client for protocol-level tests, bridge clients, and op builders.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, type RawData } from 'ws';
import type { Registry } from 'prom-client';
import type { BlockRef } from '@aether/core/tree/content';
import type { Inode } from '@aether/core/tree/inode';
import { ReconnectBackoff } from '../../src/bridge/backoff.js';
import { BridgeClient, type BridgeClientOptions, type FeedEvent, type UploadBatch } from '../../src/bridge/client.js';
import { Hub } from '../../src/hub/hub.js';
import type { HubOptionsInput } from '../../src/hub/options.js';
import { PgHubStorage } from '../../src/hub/pg-storage.js';
import { SqliteHubStorage } from '../../src/hub/sqlite-storage.js';
import type { HubStorage } from '../../src/hub/storage.js';
import { blocksOfContent } from '../../src/protocol/blocks.js';
import { PROTOCOL_VERSION, type HubFrame, type WelcomeFrame } from '../../src/protocol/frames.js';
import type { WireEntry } from '../../src/protocol/wire-ops.js';
import { createTestDatabase, pgSkipReason } from '../pg-test-db.js';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..');
export const bin = join(repo, 'packages', 'aether-remote', 'bin', 'aether.js');
export const TOKEN = 'test-token-0123456789';
export const ROOT = 1;

/** A throwaway self-signed certificate for 127.0.0.1. */
export function selfSigned(): { cert: string; key: string } {
  const dir = tempDir('aether-tls-');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=aether-test-hub', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

export function tempDir(prefix = 'aether-hub-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

// ---- the two stores: every hub test runs against both ----

export type StoreKind = 'embedded' | 'postgres';

/** The stores the conformance suite runs on; `skip` only when PostgreSQL is unreachable outside CI. */
export const STORES: { kind: StoreKind; skip: string | false }[] = [
  { kind: 'embedded', skip: false },
  { kind: 'postgres', skip: await pgSkipReason() },
];

export interface TestStore {
  kind: StoreKind;
  /** Hub options naming it. */
  opts: { dataDir: string } | { storeUrl: string };
  /** `aether hub` arguments naming it. */
  args: string[];
  /** Deletes a test database (the embedded store's temp directory stays, like every temp dir here). */
  drop(): Promise<void>;
}

/** A new, empty store: a temporary directory, or a database of its own on the test server. */
export async function newStore(kind: StoreKind): Promise<TestStore> {
  if (kind === 'embedded') {
    const dataDir = tempDir();
    return { kind, opts: { dataDir }, args: ['--data', dataDir], drop: () => Promise.resolve() };
  }
  const db = await createTestDatabase();
  return { kind, opts: { storeUrl: db.url }, args: ['--store', db.url], drop: () => db.drop() };
}

export interface TestHub {
  hub: Hub;
  logs: string[];
}

/** An in-process hub on a new store (or on `on`, shared with other hubs); closing the hub drops a store it made. */
export async function startHub(opts: Partial<HubOptionsInput> = {}, kind: StoreKind = 'embedded', on?: TestStore): Promise<TestHub> {
  const logs: string[] = [];
  const store = on ?? (await newStore(kind));
  const hub = await Hub.start({ ...store.opts, token: TOKEN, listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0', log: (l) => logs.push(l), ...opts });
  if (!on) {
    const close = hub.close.bind(hub);
    let closing: Promise<void> | undefined;
    hub.close = () => (closing ??= close().then(() => store.drop()));
  }
  return { hub, logs };
}

/** The value of a counter or gauge (with labels), as the registry holds it now. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  const v = values.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
  return v?.value ?? 0;
}

export function quickBackoff(p: Partial<{ start_ms: number; max_ms: number; multiplier: number; jitter_percent: number }> = {}): ReconnectBackoff {
  return new ReconnectBackoff({ start_ms: 20, max_ms: 200, multiplier: 2, jitter_percent: 0, ...p });
}

/** A started bridge client; resolves after its first handshake. */
export async function connectClient(url: string, opts: Partial<BridgeClientOptions> = {}): Promise<BridgeClient> {
  const client = new BridgeClient({ url, token: TOKEN, mountId: randomUUID(), backoff: quickBackoff(), ...opts });
  const welcomed = new Promise<void>((resolve) => client.once('welcome', () => resolve()));
  client.start();
  await welcomed;
  return client;
}

/** Reads feed events until `pred` holds for one; returns all read. */
export async function readFeedUntil(it: AsyncIterator<FeedEvent>, pred: (e: FeedEvent) => boolean, timeoutMs = 5000): Promise<FeedEvent[]> {
  const out: FeedEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`feed: condition not met in ${timeoutMs} ms; got ${out.length} events, the last: ${out.slice(-10).map((e) => e.kind).join(',')}`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([it.next(), new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), left)))]);
    clearTimeout(timer);
    if (r === 'timeout') continue;
    if (r.done) throw new Error('feed ended');
    out.push(r.value);
    if (pred(r.value)) return out;
  }
}

// ---- op builders ----

export function mkfile(seq: number, parent: number, name: string, ino: number, timeMs = 1000): WireEntry {
  return { seq, op: { t: 'mknode', parent, name, ino, kind: 'file', mode: 0o644, uid: 1000, gid: 1000, timeMs } };
}

export function mkdir(seq: number, parent: number, name: string, ino: number, timeMs = 1000): WireEntry {
  return { seq, op: { t: 'mknode', parent, name, ino, kind: 'dir', mode: 0o755, uid: 1000, gid: 1000, timeMs } };
}

/** A content op for `data` and the chunks it needs. */
export function content(seq: number, ino: number, data: Buffer, timeMs = 1000, baseSeq?: number): { entry: WireEntry; chunks: Map<string, Buffer> } {
  const b = blocksOfContent(data);
  const entry: WireEntry = { seq, op: { t: 'content', ino, size: b.size, blocks: b.blocks, timeMs } };
  if (baseSeq !== undefined) entry.baseSeq = baseSeq;
  return { entry, chunks: b.chunks };
}

/** A batch that creates file `name` (journal seqs `seq`, `seq + 1`) holding `data`. */
export function fileBatch(seq: number, parent: number, name: string, ino: number, data: Buffer): UploadBatch {
  const body = content(seq + 1, ino, data);
  return { upToSeq: seq + 1, baseSeq: 0, entries: [mkfile(seq, parent, name, ino), body.entry], chunks: body.chunks };
}

// ---- the hub's committed tree, read through its storage (either store) ----

/** A hub, or a store opened without one (to look at what a stopped hub left). */
export interface HasStorage {
  storage: HubStorage;
}

/** Opens a test store in this process, as a hub would. */
export async function openTestStore(store: TestStore): Promise<HasStorage> {
  const storage = 'dataDir' in store.opts ? SqliteHubStorage.open(store.opts.dataDir) : await PgHubStorage.open(store.opts.storeUrl, { log: () => undefined });
  return { storage };
}

export interface HubTree {
  hubSeq: number;
  inodes: Map<number, Inode>;
  /** [parent, name, ino], ordered by parent, then name. */
  dentries: [number, string, number][];
  blocks: Map<number, BlockRef[]>;
}

/** The whole committed tree at one hub sequence. */
export async function treeOf(hub: HasStorage): Promise<HubTree> {
  const r = await hub.storage.openSnapshot();
  try {
    const page = 100_000;
    const tree: HubTree = { hubSeq: r.hubSeq, inodes: new Map(), dentries: [], blocks: new Map() };
    for (const i of await r.inodes(-1, page)) tree.inodes.set(i.ino, i);
    tree.dentries = await r.dentries([-1, ''], page);
    for (const [ino, idx, hash] of await r.blocks([-1, -1], page)) tree.blocks.set(ino, [...(tree.blocks.get(ino) ?? []), [idx, hash]]);
    return tree;
  } finally {
    await r.close();
  }
}

/** Names in a directory of the hub's committed tree. */
export async function listDir(hub: HasStorage, dir: number): Promise<Map<string, number>> {
  return new Map((await treeOf(hub)).dentries.filter(([p]) => p === dir).map(([, name, ino]) => [name, ino]));
}

export async function inodeOf(hub: HasStorage, ino: number): Promise<Inode | undefined> {
  return (await treeOf(hub)).inodes.get(ino);
}

/** A committed file's content: its blocks' chunks, holes as zeros. */
export async function readFile(hub: HasStorage, ino: number): Promise<Buffer> {
  const tree = await treeOf(hub);
  const out = Buffer.alloc(tree.inodes.get(ino)?.size ?? 0);
  for (const [idx, hash] of tree.blocks.get(ino) ?? []) {
    const data = await hub.storage.readChunk(hash);
    if (!data) throw new Error(`chunk ${hash} of inode ${ino} is not stored`);
    data.copy(out, idx * 64 * 1024);
  }
  return out;
}

// ---- a raw protocol client ----

/** A bare WebSocket client: sends any frame, and waits for frames by predicate. */
export class RawClient {
  readonly frames: HubFrame[] = [];
  readonly binary: Buffer[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private readonly waiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) this.binary.push(data as Buffer);
      else this.frames.push(JSON.parse((data as Buffer).toString('utf8')) as HubFrame);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        for (const w of this.waiters.splice(0)) w();
        resolve();
      }),
    );
    ws.on('error', () => undefined);
  }

  static async open(url: string, opts: { ca?: Buffer; maxPayload?: number } = {}): Promise<RawClient> {
    const ws = new WebSocket(url, { ...(opts.ca ? { ca: opts.ca } : {}), perMessageDeflate: false, ...(opts.maxPayload ? { maxPayload: opts.maxPayload } : {}) });
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  /** Opens and says hello; resolves with the welcome. */
  static async hello(url: string, mountId = randomUUID(), token = TOKEN): Promise<{ c: RawClient; welcome: WelcomeFrame }> {
    const c = await RawClient.open(url);
    c.send({ t: 'hello', v: PROTOCOL_VERSION, token, mountId });
    const welcome = (await c.next((f) => f.t === 'welcome')) as WelcomeFrame;
    return { c, welcome };
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  sendBinary(data: Buffer): void {
    this.ws.send(data, { binary: true });
  }

  /** The first frame (received before or after the call) that satisfies `pred` and was not taken yet. */
  async next(pred: (f: HubFrame) => boolean, timeoutMs = 5000): Promise<HubFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode} ${this.closeReason}) before the expected frame; frames: ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame in ${timeoutMs} ms; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

// ---- hub child processes ----

export interface HubProcess {
  proc: ChildProcess;
  url: string;
  metricsUrl: string;
  stdout: () => string;
  stderr: () => string;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

const liveHubs = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of liveHubs) p.kill('SIGKILL');
});

/** Runs `aether hub` in a child process; resolves once it listens. */
export async function spawnHub(args: string[], env: Record<string, string> = {}): Promise<HubProcess> {
  const proc = spawn(process.execPath, [bin, 'hub', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  liveHubs.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  // 'close', not 'exit': only then has everything the hub wrote been read (its last line was missed once).
  const exited = new Promise<number | null>((resolve) =>
    proc.once('close', (code) => {
      liveHubs.delete(proc);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not come up in 15 s:\n${err}`)), 15_000);
    const check = (): void => {
      if (/hub listening on \S+\n/.test(out) && /metrics: +\S+\n/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code} before listening:\n${err}`));
    });
  });
  const url = /hub listening on (\S+)/.exec(out)![1]!;
  const metricsUrl = /metrics: +(\S+)/.exec(out)![1]!;
  return {
    proc,
    url,
    metricsUrl,
    stdout: () => out,
    stderr: () => err,
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Scrapes a Prometheus text endpoint and returns the value of one sample line. */
export async function scrape(metricsUrl: string, sample: string): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

/** Two hub processes on one new PostgreSQL database; `stop` stops them and drops it. */
export async function spawnHubsOnOneDatabase(): Promise<{ h1: HubProcess; h2: HubProcess; stop(): Promise<void> }> {
  const store = await newStore('postgres');
  const args = [...store.args, '--listen', '127.0.0.1:0', '--token', TOKEN, '--metrics-listen', 'off'];
  const h1 = await spawnHub(args);
  const h2 = await spawnHub(args);
  return {
    h1,
    h2,
    stop: async () => {
      await Promise.all([h1.stop(), h2.stop()]);
      await store.drop();
    },
  };
}
