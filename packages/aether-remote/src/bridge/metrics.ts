import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const BRIDGE_METRIC = {
  connected: 'aether_bridge_connected',
  connectAttemptsTotal: 'aether_bridge_connect_attempts_total',
  reconnectAttemptsTotal: 'aether_bridge_reconnect_attempts_total',
  reconnectDelayMs: 'aether_bridge_reconnect_delay_ms',
  batchesAckedTotal: 'aether_bridge_batches_acked_total',
  chunkBytesSentTotal: 'aether_bridge_chunk_bytes_sent_total',
  chunksSkippedTotal: 'aether_bridge_chunks_skipped_total',
  feedEntriesTotal: 'aether_bridge_feed_entries_total',
  feedLagEntries: 'aether_bridge_feed_lag_entries',
  snapshotsTotal: 'aether_bridge_snapshots_total',
  opsSkippedTotal: 'aether_bridge_ops_skipped_total',
  viewRepairsTotal: 'aether_bridge_view_repairs_total',
  lastHeardTimestampSeconds: 'aether_bridge_last_heard_timestamp_seconds',
} as const;

export class BridgeMetrics {
  readonly connected: Gauge;
  readonly connectAttempts: Counter;
  readonly reconnectAttempts: Counter;
  readonly reconnectDelayMs: Histogram;
  readonly batchesAcked: Counter;
  readonly chunkBytesSent: Counter;
  readonly chunksSkipped: Counter;
  readonly feedEntries: Counter;
  readonly snapshots: Counter;
  readonly opsSkipped: Counter<'reason'>;
  readonly viewRepairs: Counter;

  constructor(registry: Registry, read: { feedLag(): number; lastHeardMs(): number | null }) {
    const registers = [registry];
    this.connected = new Gauge({ name: BRIDGE_METRIC.connected, help: '1 while the bridge has a connection that completed its handshake', registers });
    this.connected.set(0);
    this.connectAttempts = new Counter({ name: BRIDGE_METRIC.connectAttemptsTotal, help: 'Connections the bridge tried to open (the first one included)', registers });
    this.reconnectAttempts = new Counter({ name: BRIDGE_METRIC.reconnectAttemptsTotal, help: 'Reconnects scheduled after a disconnect or failed connect', registers });
    this.reconnectDelayMs = new Histogram({
      name: BRIDGE_METRIC.reconnectDelayMs,
      help: 'Reconnect delays chosen by the backoff policy, in milliseconds',
      buckets: [10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000],
      registers,
    });
    this.batchesAcked = new Counter({ name: BRIDGE_METRIC.batchesAckedTotal, help: 'Batches the hub acknowledged (duplicates included)', registers });
    this.chunkBytesSent = new Counter({ name: BRIDGE_METRIC.chunkBytesSentTotal, help: 'Chunk data bytes uploaded', registers });
    this.chunksSkipped = new Counter({ name: BRIDGE_METRIC.chunksSkippedTotal, help: 'Chunks not uploaded because the hub already had them', registers });
    this.feedEntries = new Counter({ name: BRIDGE_METRIC.feedEntriesTotal, help: 'Changefeed entries received', registers });
    this.snapshots = new Counter({ name: BRIDGE_METRIC.snapshotsTotal, help: 'Whole-tree snapshots received (a cursor the hub no longer retains, or a new hub)', registers });
    this.opsSkipped = new Counter({
      name: BRIDGE_METRIC.opsSkippedTotal,
      help: "This mount's journal ops the hub acknowledged without applying them (conflict rules), by the hub's reason",
      labelNames: ['reason'],
      registers,
    });
    this.viewRepairs = new Counter({
      name: BRIDGE_METRIC.viewRepairsTotal,
      help: "Times the mount's view, with nothing left to ship, differed from the hub's tree (concurrent changes to the same names) and was brought in line",
      registers,
    });
    new Gauge({
      name: BRIDGE_METRIC.feedLagEntries,
      help: 'Changefeed entries the hub has committed that this mount has not yet taken to apply (not received, or received and queued)',
      registers,
      collect() {
        this.set(read.feedLag());
      },
    });
    new Gauge({
      name: BRIDGE_METRIC.lastHeardTimestampSeconds,
      help: 'When the hub last sent anything (a frame or its heartbeat ping), in Unix seconds; 0 until it first did. Alert on time() minus this: the hub pings every few seconds',
      registers,
      collect() {
        this.set((read.lastHeardMs() ?? 0) / 1000);
      },
    });
  }
}
