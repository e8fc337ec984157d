/**
 * A hub store made by an older Aether gains the newer columns with the values the rules decided
 * by before: hub_diverts.synced_seq (DivertRow), on both stores.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { Store } from '@aether/core/store/store';
import { migratePg, PG_MIGRATIONS } from '../../src/hub/pg-schema.js';
import { HUB_EXTENSION } from '../../src/hub/schema.js';
import { createTestDatabase, pgSkipReason } from '../pg-test-db.js';
import { tempDir } from './helpers.js';

/** Before synced_seq: hub schema version 2. */
const BEFORE = 2;
const VERSIONS = "INSERT INTO hub_versions (ino, content_seq, content_mount) VALUES (10, 7, 'm1')";
// m1's divert to copy 10, whose last content is m1's (seq 7): synced then. m2's to the same
// copy: made at 4, synced then. m1's to copy 11, which has no version row: made at 2.
const DIVERTS = "INSERT INTO hub_diverts (mount_id, ino, copy_ino, hub_seq) VALUES ('m1', 5, 10, 3), ('m2', 6, 10, 4), ('m1', 8, 11, 2)";
const EXPECTED = [
  { mount_id: 'm1', ino: 5, synced_seq: 7 },
  { mount_id: 'm1', ino: 8, synced_seq: 2 },
  { mount_id: 'm2', ino: 6, synced_seq: 4 },
];
const SELECT = 'SELECT mount_id, ino, synced_seq FROM hub_diverts ORDER BY mount_id, ino';

describe('hub schema upgrade: hub_diverts.synced_seq', () => {
  it('embedded store: rows made before take the copy\'s last content change when it was the mount\'s own, else the copy\'s making', () => {
    const dir = tempDir();
    Store.open(dir, undefined, { extensions: [{ ...HUB_EXTENSION, migrations: HUB_EXTENSION.migrations.slice(0, BEFORE) }] }).close();
    const db = new Database(join(dir, 'meta.sqlite'));
    db.exec(`${VERSIONS}; ${DIVERTS}`);
    db.close();
    Store.open(dir, undefined, { extensions: [HUB_EXTENSION] }).close();
    const after = new Database(join(dir, 'meta.sqlite'), { readonly: true });
    try {
      assert.deepEqual(after.prepare(SELECT).all(), EXPECTED);
    } finally {
      after.close();
    }
  });

  it('postgres store: the same', async (t) => {
    const skip = await pgSkipReason();
    if (skip) return t.skip(skip);
    const db = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const c = await pool.connect();
      try {
        await c.query('CREATE TABLE hub_schema (version integer NOT NULL)');
        await c.query(`INSERT INTO hub_schema (version) VALUES (${BEFORE})`);
        for (const m of PG_MIGRATIONS.slice(0, BEFORE)) await c.query(m);
        await c.query(`${VERSIONS}; ${DIVERTS}`);
        await migratePg(c, { uid: 0, gid: 0 }, Date.now());
        assert.deepEqual((await c.query(SELECT)).rows.map((r: { mount_id: string; ino: string; synced_seq: string }) => ({ ...r, ino: Number(r.ino), synced_seq: Number(r.synced_seq) })), EXPECTED);
        assert.equal((await c.query('SELECT version FROM hub_schema')).rows[0].version, PG_MIGRATIONS.length);
      } finally {
        c.release();
      }
    } finally {
      await pool.end();
      await db.drop();
    }
  });
});
