import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const HUB_METRIC = {
  connectedMounts: 'aether_hub_connected_mounts',
  connectionsTotal: 'aether_hub_connections_total',
  commitsTotal: 'aether_hub_commits_total',
  duplicateBatchesTotal: 'aether_hub_duplicate_batches_total',
  changefeedSeq: 'aether_hub_changefeed_seq',
  bytesInTotal: 'aether_hub_bytes_in_total',
  bytesOutTotal: 'aether_hub_bytes_out_total',
  rejectedTotal: 'aether_hub_rejected_total',
  conflictsTotal: 'aether_hub_conflicts_total',
  snapshotsTotal: 'aether_hub_snapshots_total',
  commitSeconds: 'aether_hub_commit_seconds',
  chunksReclaimedTotal: 'aether_hub_chunks_reclaimed_total',
  chunkBytesReclaimedTotal: 'aether_hub_chunk_bytes_reclaimed_total',
  chunksDying: 'aether_hub_chunks_dying',
} as const;

/** Frame kinds for the byte counters: chunk data (binary) or control (JSON). */
export type FrameKind = 'chunk' | 'control';

export class HubMetrics {
  readonly connectionsTotal: Counter;
  readonly commits: Counter;
  readonly duplicateBatches: Counter;
  readonly bytesIn: Counter<'kind'>;
  readonly bytesOut: Counter<'kind'>;
  readonly rejected: Counter<'reason'>;
  readonly conflicts: Counter<'kind'>;
  readonly snapshots: Counter;
  readonly commitSeconds: Histogram;
  readonly chunksReclaimed: Counter;
  readonly chunkBytesReclaimed: Counter;
  readonly chunksDying: Gauge;

  constructor(registry: Registry, read: { connectedMounts(): number; changefeedSeq(): number }) {
    const registers = [registry];
    new Gauge({
      name: HUB_METRIC.connectedMounts,
      help: 'Mounts with an authenticated connection',
      registers,
      collect() {
        this.set(read.connectedMounts());
      },
    });
    new Gauge({
      name: HUB_METRIC.changefeedSeq,
      help: 'Hub sequence number of the newest changefeed entry',
      registers,
      collect() {
        this.set(read.changefeedSeq());
      },
    });
    this.connectionsTotal = new Counter({ name: HUB_METRIC.connectionsTotal, help: 'WebSocket connections accepted', registers });
    this.commits = new Counter({ name: HUB_METRIC.commitsTotal, help: 'Batches committed (each one changefeed entry or an applied-sequence advance)', registers });
    this.duplicateBatches = new Counter({ name: HUB_METRIC.duplicateBatchesTotal, help: 'Re-sent batches acknowledged again without applying', registers });
    this.bytesIn = new Counter({ name: HUB_METRIC.bytesInTotal, help: 'Bytes received in WebSocket messages, by frame kind', labelNames: ['kind'], registers });
    this.bytesOut = new Counter({ name: HUB_METRIC.bytesOutTotal, help: 'Bytes sent in WebSocket messages, by frame kind', labelNames: ['kind'], registers });
    this.rejected = new Counter({ name: HUB_METRIC.rejectedTotal, help: 'Requests and frames rejected, by reason (the error code sent)', labelNames: ['reason'], registers });
    this.conflicts = new Counter({ name: HUB_METRIC.conflictsTotal, help: 'Conflicts resolved, by kind (renamed, conflict-copy)', labelNames: ['kind'], registers });
    this.snapshots = new Counter({ name: HUB_METRIC.snapshotsTotal, help: 'Snapshots sent to clients too far behind the changefeed', registers });
    this.commitSeconds = new Histogram({ name: HUB_METRIC.commitSeconds, help: 'Time to commit a batch durably', buckets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3], registers });
    this.chunksReclaimed = new Counter({ name: HUB_METRIC.chunksReclaimedTotal, help: 'Chunks dropped: named by neither the tree nor a retained changefeed entry for the grace period', registers });
    this.chunkBytesReclaimed = new Counter({ name: HUB_METRIC.chunkBytesReclaimedTotal, help: 'Bytes given back by the chunk reclaim (embedded: pack files; PostgreSQL: row data, freed by VACUUM)', registers });
    this.chunksDying = new Gauge({ name: HUB_METRIC.chunksDying, help: 'Chunks no longer named, kept until their grace period ends', registers });
    for (const kind of ['chunk', 'control']) {
      this.bytesIn.inc({ kind }, 0);
      this.bytesOut.inc({ kind }, 0);
    }
  }
}
