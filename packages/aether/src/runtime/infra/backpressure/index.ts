export { BackpressureCoordinator, type BackpressureStatus, type CoordinatorOptions, type SourceStatus } from './coordinator.js';
export { WriteGate } from './gate.js';
export type { CachePressure, CachePressureSource } from './inputs.js';
export { BACKPRESSURE_METRIC } from './metrics.js';
export type { CacheReason, JournalReason } from './rules.js';
export { normalizeThresholds, thresholdsFromSection, type Thresholds } from './thresholds.js';
