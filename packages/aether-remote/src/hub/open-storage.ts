import type { HubOptions } from './options.js';
import { PgHubStorage } from './pg-storage.js';
import { SqliteHubStorage } from './sqlite-storage.js';
import type { HubStorage } from './storage.js';

/** The storage `opts` names: a PostgreSQL database for `storeUrl`, else the embedded store in `dataDir`. */
export function openHubStorage(opts: HubOptions): Promise<HubStorage> {
  if (opts.storeUrl !== '') return PgHubStorage.open(opts.storeUrl, { log: (line) => opts.log(`aether hub: ${line}`) });
  return Promise.resolve(SqliteHubStorage.open(opts.dataDir));
}
