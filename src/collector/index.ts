/** Public surface of the eBPF traffic collector (see docs/COLLECTOR.md). */
export {
  startCollector,
  Collector,
  CollectorState,
  DEFAULT_PORTS,
  DEFAULT_OBJECT_PATH,
  NOT_PERMITTED_MESSAGE,
  disabledStatus,
  type CollectorOptions,
  type CollectorStatus,
  type CollectorSource,
  type WindowListener,
} from './collector.js';
export { registerCollectorRoutes, LATEST_PATH, STATUS_PATH } from './routes.js';
export { WindowStream, STREAM_PATH, HELLO_KIND } from './stream.js';
export { CollectorMetrics } from './metrics.js';
export { SnapshotWriter } from './snapshot-writer.js';
export { WindowComputer } from './windows.js';
export { checkObject, checkObjectBytes, assertSafe, type SafetyOptions, type SafetyReport } from './safety-check.js';
export { CollectorError, CollectorErrorCode, SafetyCheckError, type SafetyViolation } from './errors.js';
export { AttachMode, TcHook } from './attach.js';
export { SCHEMA_VERSION, WINDOW_KIND, type WindowSnapshot, type FlowWindow, type IndexWindow, type CountersJson } from './schema.js';
