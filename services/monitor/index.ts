export { monitorOptions, monitorService } from "./monitor-service.js";
export { createMonitor, EVALUATION_KEY_PREFIX, GATING_POLICY_KEY, manifestDigest } from "./monitor.js";
export type { Monitor, MonitorOptions, PromoteOutcome, StoredEvaluation } from "./monitor.js";
export { followRoundStats, readRoundStats, ROUND_STATS_PREFIX, roundRates } from "./round-stats.js";
export type { RoundStats } from "./round-stats.js";
