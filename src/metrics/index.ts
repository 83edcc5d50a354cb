/** Prometheus metrics (docs/metrics.md): the registry, the watchers that move them, and the /metrics listener. */
export { createMetrics, METRIC, type Metrics, type MetricReaders, type RecorderTotals, type CallDirection } from './metrics.js';
export { watchCalls } from './watch-calls.js';
export { watchRecordings } from './watch-recordings.js';
export { watchSpool } from './watch-storage.js';
export { watchNg, watchRtpengineCpu, processCpuSeconds } from './watch-media.js';
export { observeSettler, webhookVerdicts } from './watch-payouts.js';
export { listenMetrics, type MetricsListener } from './listener.js';
export { parseExposition, sampleValue, type Sample } from './exposition.js';
