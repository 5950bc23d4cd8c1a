/**
 * The monitor's HTTP dashboard: plots per round drawn as inline SVG (no CDN), checkpoint history
 * with statuses, the promoted lineage; the page updates live by re-fetching its fragment.
 */
export { collectDashboardState, startDashboard } from "./server.js";
export type { DashboardOptions, DashboardServer, DashboardSource, RoundRates } from "./server.js";
export { renderFragment, renderPage, renderPlots } from "./view.js";
export type { DashboardCheckpoint, DashboardEvaluation, DashboardState } from "./view.js";
export { escapeHtml, lineChart } from "../../../src/platform/charts/index.js";
export type { LineChartOptions, Series } from "../../../src/platform/charts/index.js";
