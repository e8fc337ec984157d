import pg from 'pg';

/** Column names and PostgreSQL types of a table, key columns first. */
export type Cols = readonly (readonly [name: string, pgType: string])[];

/** A value as an SQL literal, for the statements a commit sends in one message. */
export function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return pg.escapeLiteral(v);
  throw new Error(`no SQL literal for a ${typeof v}`);
}

const tuple = (row: readonly unknown[]): string => `(${row.map(sqlLiteral).join(', ')})`;

/**
 * The statements that replace the rows with the given keys (the first `keyCols` columns) by
 * `rows`: deleted, then inserted. Literal SQL, so that a whole commit's writes travel in one
 * round trip while it holds the hub_state lock.
 */
export function replaceRows(table: string, cols: Cols, keyCols: number, keys: readonly unknown[][], rows: readonly unknown[][]): string[] {
  if (keys.length === 0) return [];
  const keyNames = cols.slice(0, keyCols).map(([n]) => n).join(', ');
  const out = [`DELETE FROM ${table} WHERE (${keyNames}) IN (VALUES ${keys.map(tuple).join(', ')})`];
  if (rows.length > 0) out.push(`INSERT INTO ${table} (${cols.map(([n]) => n).join(', ')}) VALUES ${rows.map(tuple).join(', ')}`);
  return out;
}
