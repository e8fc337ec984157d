import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Serves `registry` on HTTP `/metrics`. `listen` is `host:port` (port 0 picks one) or `off`. */
export class MetricsServer {
  private server: Server | undefined;
  address: string | undefined;
  private readonly scrapeHooks: (() => void)[] = [];

  constructor(private readonly registry: Registry) {}

  /** Runs `hook` before each scrape (figures gathered outside the registry, such as the binding's). */
  onScrape(hook: () => void): void {
    this.scrapeHooks.push(hook);
  }

  async listen(listen: string): Promise<string | undefined> {
    if (listen === 'off') return undefined;
    const i = listen.lastIndexOf(':');
    const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    const port = Number(listen.slice(i + 1));
    const server = createServer((req, res) => {
      if (req.url !== '/metrics' || req.method !== 'GET') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
        return;
      }
      for (const hook of this.scrapeHooks) hook();
      // No keep-alive: scrapes come seconds apart, and a client that reuses a connection the
      // server is just closing for idleness gets "other side closed" (a test's fetch did, its
      // event loop held by a synchronous call past the idle timeout).
      res.shouldKeepAlive = false;
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    this.address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    return this.address;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
  }
}
