import type { HubOptions } from './options.js';
import { SqliteHubStorage } from './sqlite-storage.js';
import type { HubStorage } from './storage.js';

/** The storage `opts` names: a PostgreSQL database for `storeUrl`, else the embedded store in `dataDir`. */
export async function openHubStorage(opts: HubOptions): Promise<HubStorage> {
  if (opts.storeUrl !== '') {
    // Loaded only for a PostgreSQL store: the client cost every other command (a mount, a status)
    // ~40 ms at start.
    const { PgHubStorage } = await import('./pg-storage.js');
    return PgHubStorage.open(opts.storeUrl, { log: (line) => opts.log(`aether hub: ${line}`) });
  }
  return SqliteHubStorage.open(opts.dataDir);
}
