import { AetherError } from '@aether/core/errors';

/**
 * The hubs a mount may sync through: `--bridge` / `[bridge] url` holds one URL or several
 * separated by commas (hubs sharing one PostgreSQL store; the client fails over between them in
 * this order). Each must be ws:// or wss://; anything else is refused before the mount starts.
 */
export function parseHubUrls(value: string): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw new AetherError('MOUNT_OPTION_INVALID', `bridge url ${JSON.stringify(value)}: no hub URL`);
  for (const u of urls) {
    let ok = false;
    try {
      const parsed = new URL(u);
      ok = (parsed.protocol === 'ws:' || parsed.protocol === 'wss:') && parsed.host !== '';
    } catch {
      ok = false;
    }
    if (!ok) throw new AetherError('MOUNT_OPTION_INVALID', `bridge url ${JSON.stringify(u)}: must be ws://HOST:PORT or wss://HOST:PORT (several separated by commas)`);
  }
  return urls;
}
