import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StoreWriterClient } from '../../src/store/store-client.js';
import { Store } from '../../src/store/store.js';

/** Nice value of each thread of this process, by thread id (field 19 of /proc/self/task/T/stat). */
function niceByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

describe('the store writer thread', () => {
  it('runs at a lower priority than the rest of the mount: only its own thread is reniced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aether-store-client-'));
    Store.open(dir).close();
    const before = niceByThread();
    const client = new StoreWriterClient(dir, 0);
    try {
      assert.deepEqual(await client.applySpans([]), { applied: 0, rejected: [] }, 'the writer answers');
      const after = niceByThread();
      const added = [...after].filter(([tid]) => !before.has(tid));
      assert.ok(added.some(([, nice]) => nice === 10), `a new thread at nice 10 (new threads: ${JSON.stringify(added)})`);
      assert.equal(after.get(process.pid), before.get(process.pid), 'the main thread keeps its priority');
      assert.deepEqual(
        [...before].filter(([tid]) => after.has(tid)).map(([tid]) => after.get(tid)),
        [...before].filter(([tid]) => after.has(tid)).map(([, nice]) => nice),
        'no thread that was there before changed',
      );
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
