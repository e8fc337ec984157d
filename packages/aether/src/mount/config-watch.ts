import { readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

/** How long a burst of change events for the file settles before it is read (an editor's save). */
const SETTLE_MS = 100;

function contentOf(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Calls `changed` when the content of `file` changes (DESIGN §3: a change to the TOML file reloads
 * it, as SIGHUP does). The directory is watched, not the file, so an editor that saves by writing a
 * new file and renaming it over the old one is seen too; events that leave the content as it was
 * are ignored. Returns the function that stops watching.
 */
export function watchConfigFile(file: string, changed: () => void, log: (line: string) => void): () => void {
  const name = basename(file);
  let seen = contentOf(file);
  let timer: NodeJS.Timeout | undefined;
  const settle = (): void => {
    timer = undefined;
    const now = contentOf(file);
    if (now === seen) return;
    seen = now;
    changed();
  };
  let watcher: ReturnType<typeof watch>;
  try {
    watcher = watch(dirname(file), (_event, which) => {
      if (which !== null && which !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(settle, SETTLE_MS);
    });
  } catch (err) {
    log(`cannot watch ${file} for changes (reload with SIGHUP or aether config reload): ${(err as Error).message}`);
    return () => undefined;
  }
  watcher.on('error', (err) => log(`watching ${file} stopped (reload with SIGHUP or aether config reload): ${err.message}`));
  watcher.unref();
  return () => {
    if (timer) clearTimeout(timer);
    watcher.close();
  };
}
