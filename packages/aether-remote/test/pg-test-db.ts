/**
 * The PostgreSQL server the tests use: AETHER_TEST_PG_URL (scripts/pg-test-server.sh starts one
 * and prints it; .ci/run exports it). Every test creates a database of its own and drops it.
 * Unreachable: under CI=true the postgres tests run and fail; elsewhere they are skipped, loudly.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env.AETHER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';

let reachable: Promise<string | false> | undefined;

/** False when the postgres tests run; otherwise why they are skipped. */
export function pgSkipReason(): Promise<string | false> {
  reachable ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.end();
      return false;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (process.env.CI === 'true') return false;
      const why = `PostgreSQL at ${PG_URL} is unreachable (${(err as Error).message}): the postgres store tests are SKIPPED. Start one with scripts/pg-test-server.sh and set AETHER_TEST_PG_URL.`;
      process.stderr.write(`\n######## ${why}\n\n`);
      return why;
    }
  })();
  return reachable;
}

/** Runs `work` on an administrator's connection to the test server's administrative database, or to `database`. */
export async function withAdmin<T>(work: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(PG_URL);
  if (database !== undefined) url.pathname = `/${database}`;
  const c = new pg.Client({ connectionString: url.href, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the test server. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `aether_test_${randomUUID().replaceAll('-', '')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop: () => (dropped ??= withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined)),
  };
}
