/** Helpers of the bridge-mode mount tests: polling, reading, tree comparison, `sync wait`. */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MountProcess } from './harness.js';

/** Fast reconnects, so a restarted hub is found quickly. */
export const FAST_ENV = { AFS_AETHER_RECONNECT_START_MS: '50', AFS_AETHER_RECONNECT_MAX_MS: '300', AFS_AETHER_RECONNECT_JITTER_PERCENT: '0' };

/** Retries `check` until it passes or `ms` elapse; the last failure is the error. */
export async function within(ms: number, what: string, check: () => void): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms: ${err instanceof Error ? err.message : String(err)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every file and directory under `root`: relative path → mode and content (files). */
export function tree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      if (st.isDirectory()) {
        out.set(p, `dir ${st.mode.toString(8)}`);
        walk(p);
      } else out.set(p, `file ${st.mode.toString(8)} ${createHash('sha256').update(readFileSync(join(root, p))).digest('hex').slice(0, 16)}`);
    }
  };
  walk('');
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `aether sync wait` against a mount: exits 0 once everything pending is committed at the hub. */
export function syncWait(m: MountProcess, timeoutS = 20): { code: number | null; out: string; err: string } {
  return m.ctl(['sync', 'wait', '--timeout', String(timeoutS)]);
}

/** Writes numbered files of varied sizes and modes into `dir`, remembering what it wrote. */
export function fileWriter(dir: string): { expected: Map<string, string>; writeSome(count: number): void } {
  const expected = new Map<string, string>();
  let n = 0;
  return {
    expected,
    writeSome(count: number): void {
      for (let i = 0; i < count; i++, n++) {
        const body = `file ${n} `.repeat(1 + ((n * 37) % 5000));
        writeFileSync(join(dir, `f${n}.txt`), body, { mode: n % 2 ? 0o600 : 0o644 });
        expected.set(`f${n}.txt`, body);
      }
    },
  };
}
