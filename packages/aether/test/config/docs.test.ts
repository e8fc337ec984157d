import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderAllDocs } from '../../src/config/docs/render.js';
import { SETTINGS } from '../../src/config/index.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..');
const docsDir = join(repo, 'docs', 'config');
const SECTIONS = ['Status', 'Audience', 'Type and Default', 'What It Does', 'Runtime Behavior', 'Input Surfaces', 'Resolution and Override Order', 'Value Rules', 'Interaction Notes', 'Observability', 'Example'];

describe('generated reference pages', () => {
  const files = renderAllDocs();
  it('docs/config holds exactly the generated files, byte for byte (run `npm run docs:config` after a schema change)', () => {
    assert.deepEqual(readdirSync(docsDir).sort(), [...files.keys()].sort());
    for (const [name, text] of files) assert.equal(readFileSync(join(docsDir, name), 'utf8'), text, `docs/config/${name} is stale`);
  });
  it('every setting has a page with the seeds\' sections in order', () => {
    for (const s of SETTINGS) {
      const page = files.get(`${s.env}.md`);
      assert.ok(page, s.env);
      const heads = [...page.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
      const order = SECTIONS.map((h) => heads.indexOf(h));
      assert.ok(order.every((i) => i >= 0), `${s.env} lacks a section: ${heads.join(', ')}`);
      assert.deepEqual([...order].sort((a, b) => a - b), order, `${s.env} sections out of order`);
    }
  });
  it('pages state the seeds\' rules', () => {
    assert.match(files.get('AFS_AETHER_JOURNAL_SYNC_BACKLOG_BYTES.md') ?? '', /`0` disables backlog-triggered flushes/);
    assert.match(files.get('AFS_AETHER_JOURNAL_MAX_AGE_SECS.md') ?? '', /Must be strictly greater than `AFS_AETHER_JOURNAL_CLEAR_AGE_SECS`/);
    assert.match(files.get('AFS_AETHER_CACHE_DIRTY_LOW_WATER_BYTES.md') ?? '', /clamped down to `cache_dirty_high_water_bytes` with a warning/);
    assert.match(files.get('AFS_AETHER_RECONNECT_START_MS.md') ?? '', /Must be greater than 0/);
    assert.match(files.get('AFS_AETHER_RECONNECT_JITTER_PERCENT.md') ?? '', /jitter_factor = jitter_percent \/ 100/);
  });
});
