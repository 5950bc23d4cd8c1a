/**
 * The demo report: from one DemoReport (what `autodidact demo` measured), the figures as data, one
 * self-contained HTML page with inline SVG, PNG plots drawn by our own rasteriser, and the JSON.
 */
export { defaultRun, generatorLineageOf, reportFigures } from "./figures.js";
export { renderReportHtml } from "./html.js";
export { chartLayout, renderPng } from "./png-chart.js";
export type { ChartLayout, PngOptions } from "./png-chart.js";
export { crc32, encodePng, PNG_SIGNATURE } from "./png.js";
export { hasGlyph, missingGlyphs } from "./font.js";
export { figureColors, seriesColor } from "./colors.js";
export { parseDemoReport, writeReport } from "./write.js";
export type { DemoReportFile } from "./write.js";
export type { DemoReport, DemoRound, DemoRun, Figure, LineageRound, RoundPhaseSeconds } from "./types.js";
