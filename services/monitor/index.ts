export { monitorOptions, monitorService } from "./monitor-service.js";
export { createMonitor } from "./monitor.js";
export type { Monitor, MonitorOptions, PromoteOutcome, StoredEvaluation } from "./monitor.js";
export { followRoundStats, readRoundStat, readRoundStats, roundRates } from "./round-stats.js";
export type { RoundStats } from "./round-stats.js";
export type { GameEvaluation, ShownGame } from "./arena/game-evaluation.js";
