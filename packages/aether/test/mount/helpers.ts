import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { inspectMountpoint } from '../../src/mount/fuse-binding.js';
import type { MemfsConfig, MemfsEvent } from './fixtures/memfs.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'memfs.js');
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const BARRIER_TIMEOUT_MS = 5000;

export type OpEvent = Extract<MemfsEvent, { ev: 'op' }>;

export function tempDir(prefix = 'aether-fuse-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The memfs fixture in a child process, with the events it printed so far. */
export class Memfs {
  readonly events: MemfsEvent[] = [];
  readonly exited: Promise<number | null>;
  readonly mountpoint: string;
  private readonly child: ChildProcess;
  private barriers = 0;
  private waiters: Array<() => void> = [];

  private constructor(config: MemfsConfig) {
    this.mountpoint = config.mountpoint;
    this.child = spawn(process.execPath, [FIXTURE, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((res) => this.child.once('exit', (code) => res(code)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as MemfsEvent);
      for (const w of this.waiters) w();
    });
    this.child.once('exit', () => {
      for (const w of this.waiters) w();
    });
  }

  /** Starts the fixture and waits until it has mounted or failed to. */
  static async start(config: MemfsConfig): Promise<Memfs> {
    const fs = new Memfs(config);
    await fs.waitFor((e) => e.ev === 'mounted' || e.ev === 'mount-error', START_TIMEOUT_MS);
    return fs;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  ops(op?: string, path?: string): OpEvent[] {
    return this.events.filter((e): e is OpEvent => e.ev === 'op' && (op === undefined || e.op === op) && (path === undefined || e.path === path));
  }

  /** Resolves with the first event matching, waiting for it up to `timeoutMs`. */
  waitFor(match: (e: MemfsEvent) => boolean, timeoutMs: number): Promise<MemfsEvent> {
    return new Promise((res, rej) => {
      const check = (): boolean => {
        const hit = this.events.find(match);
        if (hit !== undefined) {
          done();
          res(hit);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          rej(new Error(`memfs exited (${this.child.exitCode ?? this.child.signalCode}) before the awaited event; events: ${JSON.stringify(this.events.slice(-5))}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        rej(new Error(`memfs: no awaited event within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-5))}`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      if (!check()) this.waiters.push(waiter);
    });
  }

  /**
   * Waits until the fixture has reported every call made so far: events arrive through a pipe,
   * after the file call that caused them has returned. Creates a marker file and waits for its
   * create event; one JS thread serves requests in order, so earlier events came first.
   */
  async barrier(): Promise<void> {
    const name = `.barrier-${++this.barriers}`;
    writeFileSync(join(this.mountpoint, name), '');
    await this.waitFor((e) => e.ev === 'op' && e.op === 'create' && e.path === `/${name}`, BARRIER_TIMEOUT_MS);
  }

  /** SIGKILL: the FUSE server dies without unmounting, leaving a stale mount. */
  async kill9(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Asks the fixture to unmount and exit; kills it when it does not within the timeout. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * After-hook cleanup that works whatever state a failed test left: stops the fixtures, lazily
 * unmounts anything still mounted or stale at `dir`, and removes `dir` only once nothing is mounted
 * there (removing through a live mount would delete through the file system).
 */
export async function cleanup(dir: string | undefined, ...fixtures: Array<Memfs | undefined>): Promise<void> {
  for (const f of fixtures) await f?.stop();
  if (dir === undefined) return;
  const state = await inspectMountpoint(dir).catch(() => 'stale' as const);
  if (state === 'mounted' || state === 'stale') {
    for (const cmd of ['fusermount3', 'fusermount']) {
      try {
        execFileSync(cmd, ['-u', '-z', dir], { stdio: 'ignore' });
        break;
      } catch {
        // try the next command
      }
    }
  }
  const after = await inspectMountpoint(dir).catch(() => 'stale' as const);
  if (after === 'mounted' || after === 'stale') throw new Error(`cleanup: ${dir} is still ${after}`);
  rmSync(dir, { recursive: true, force: true });
}
