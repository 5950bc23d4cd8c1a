// Line charts as inline SVG, drawn server-side: the monitor's dashboard and the demo's report share them.
export { escapeHtml, lineChart } from "./svg.js";
export type { LineChartOptions, Series } from "./svg.js";
