import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { figureColors } from "./colors.js";
import { GLYPH_HEIGHT, textWidth } from "./font.js";
import { encodePng } from "./png.js";
import { parseHex, Raster, type Rgb } from "./raster.js";
import type { Figure } from "./types.js";

/** Options of {@link renderPng}. */
export interface PngOptions {
  /** Width in pixels (default 960). */
  readonly width?: number;
  /** Height in pixels (default 540). */
  readonly height?: number;
}

/** A rectangle in output pixels. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** Where {@link renderPng} puts things, in output pixels; tests use it to look inside the plot area. */
export interface ChartLayout {
  readonly width: number;
  readonly height: number;
  readonly plot: Box;
  readonly legend: Box;
  readonly xTicks: readonly number[];
  readonly yTicks: readonly number[];
  readonly xDomain: readonly [number, number];
  readonly yDomain: readonly [number, number];
  /** Decimals used for the tick labels of each axis. */
  readonly xDecimals: number;
  readonly yDecimals: number;
  /** Legend entries with their top-left corner. */
  readonly legendItems: readonly { readonly x: number; readonly y: number; readonly name: string }[];
}

const SS = 3; // supersampling factor: drawn 3x larger, then averaged down
const PAD = 16;
const TITLE_SCALE = 3;
const TEXT_SCALE = 2;
const SWATCH = 26;
const LINE_WIDTH = 3;
const DASHED_WIDTH = 2;
const MARKER_RADIUS = 3.5;
const MARKER_LIMIT = 60; // above this many points a series is drawn as a bare line
const DASH: readonly [number, number] = [9, 6];
const INK: Rgb = [17, 24, 39];
const MUTED: Rgb = [75, 85, 99];
const GRID: Rgb = [229, 231, 235];
const AXIS: Rgb = [55, 65, 81];

function niceStep(span: number, target: number, integer: boolean): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const steps = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const m = steps.find((s) => s * p >= raw) ?? 10;
  const step = m * p;
  return integer ? Math.max(1, Math.round(step)) : step;
}

function decimalsFor(values: readonly number[]): number {
  for (let d = 0; d <= 6; d++) {
    const k = 10 ** d;
    if (values.every((v) => Math.abs(Math.round(v * k) - v * k) < 1e-6)) return d;
  }
  return 6;
}

function ticks(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let i = first; i * step <= hi + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** Computes the layout of a figure's chart at the given size (axes, ticks, plot area, legend). */
export function chartLayout(figure: Figure, width = 960, height = 540): ChartLayout {
  const pts = figure.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  let x0 = xs.length ? Math.min(...xs) : 0;
  let x1 = xs.length ? Math.max(...xs) : 1;
  const xInt = xs.every(Number.isInteger);
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  const xStep = niceStep(x1 - x0, 8, xInt);
  const xTicks = ticks(x0, x1, xStep);
  let y0 = figure.yMin ?? (ys.length ? Math.min(...ys) : 0);
  let y1 = figure.yMax ?? (ys.length ? Math.max(...ys) : 1);
  const ysInt = ys.length > 0 && ys.every(Number.isInteger);
  if (y1 === y0) {
    y0 -= ysInt ? 1 : 0.5;
    y1 += ysInt ? 1 : 0.5;
  }
  const yInt = ysInt && Number.isInteger(y0) && Number.isInteger(y1);
  const yStep = niceStep(y1 - y0, 5, yInt);
  if (figure.yMin === undefined) y0 = Math.floor(y0 / yStep + 1e-9) * yStep;
  if (figure.yMax === undefined) y1 = Math.ceil(y1 / yStep - 1e-9) * yStep;
  const yTicks = ticks(y0, y1, yStep);
  const xDecimals = decimalsFor([xStep, ...xTicks]);
  const yDecimals = decimalsFor([yStep, ...yTicks]);
  const yLabelW = Math.max(0, ...yTicks.map((t) => textWidth(t.toFixed(yDecimals)))) * TEXT_SCALE;

  // Legend: entries flow left to right and wrap, anchored to the bottom edge.
  const rowH = GLYPH_HEIGHT * TEXT_SCALE + 6;
  const items: { x: number; y: number; name: string }[] = [];
  let lx = PAD;
  let row = 0;
  for (const s of figure.series) {
    const w = SWATCH + 6 + textWidth(s.name) * TEXT_SCALE;
    if (lx > PAD && lx + w > width - PAD) {
      lx = PAD;
      row++;
    }
    items.push({ x: lx, y: row, name: s.name });
    lx += w + 22;
  }
  const rows = figure.series.length ? row + 1 : 0;
  const legendTop = height - PAD - rows * rowH;
  for (const it of items) it.y = legendTop + it.y * rowH;

  const xLabelTop = legendTop - 8 - GLYPH_HEIGHT * TEXT_SCALE;
  const plotBottom = xLabelTop - 10 - 7 * TEXT_SCALE - 4 - 6;
  const plotTop = PAD + GLYPH_HEIGHT * TITLE_SCALE + 14;
  const plotLeft = PAD + GLYPH_HEIGHT * TEXT_SCALE + 10 + yLabelW + 10;
  const lastTickHalf = xTicks.length ? (textWidth(xTicks[xTicks.length - 1]!.toFixed(xDecimals)) * TEXT_SCALE) / 2 : 0;
  const plotRight = width - PAD - Math.max(8, lastTickHalf);
  const plot = { x: plotLeft, y: plotTop, w: plotRight - plotLeft, h: plotBottom - plotTop };
  if (plot.w < 40 || plot.h < 40) {
    throw new AutodidactError(`png: ${width}x${height} leaves no room to plot figure ${figure.id} (${figure.series.length} legend entries)`, Code.InvalidArgument);
  }
  return {
    width,
    height,
    plot,
    legend: { x: PAD, y: legendTop, w: width - 2 * PAD, h: rows * rowH },
    xTicks,
    yTicks,
    xDomain: [x0, x1],
    yDomain: [y0, y1],
    xDecimals,
    yDecimals,
    legendItems: items,
  };
}

/**
 * Renders a figure as a PNG line chart with our own rasteriser: title, axes with ticks and labels,
 * light grid, one colour per series (dashed where the figure says so), point markers, and a legend.
 * Drawn at 3x and averaged down, so lines and markers are anti-aliased.
 */
export function renderPng(figure: Figure, options: PngOptions = {}): Buffer {
  const L = chartLayout(figure, options.width ?? 960, options.height ?? 540);
  const img = new Raster(L.width * SS, L.height * SS);
  const { plot } = L;
  const text = (x: number, y: number, s: string, scale: number, c: Rgb, vertical = false): void =>
    img.text(Math.round(x) * SS, Math.round(y) * SS, s, scale * SS, c, vertical);
  const sx = (x: number): number => (plot.x + ((x - L.xDomain[0]) / (L.xDomain[1] - L.xDomain[0])) * plot.w) * SS;
  const sy = (y: number): number => (plot.y + plot.h - ((y - L.yDomain[0]) / (L.yDomain[1] - L.yDomain[0])) * plot.h) * SS;

  // The title shrinks (3x, 2x, 1x font) until it fits the width.
  const titleScale = [TITLE_SCALE, 2, 1].find((k) => textWidth(figure.title) * k <= L.width - 2 * PAD) ?? 1;
  text(PAD, PAD + (TITLE_SCALE - titleScale) * 4, figure.title, titleScale, INK);
  // Grid and ticks.
  for (const t of L.yTicks) {
    const y = Math.round(sy(t) / SS);
    img.fillRect(plot.x * SS, y * SS, plot.w * SS, SS, GRID);
    img.fillRect((plot.x - 6) * SS, y * SS, 6 * SS, SS, AXIS);
    const label = t.toFixed(L.yDecimals);
    text(plot.x - 10 - textWidth(label) * TEXT_SCALE, y - (7 * TEXT_SCALE) / 2, label, TEXT_SCALE, MUTED);
  }
  for (const t of L.xTicks) {
    const x = Math.round(sx(t) / SS);
    img.fillRect(x * SS, plot.y * SS, SS, plot.h * SS, GRID);
    img.fillRect(x * SS, (plot.y + plot.h) * SS, SS, 6 * SS, AXIS);
    const label = t.toFixed(L.xDecimals);
    text(x - (textWidth(label) * TEXT_SCALE) / 2, plot.y + plot.h + 10, label, TEXT_SCALE, MUTED);
  }
  // Axes: left and bottom.
  img.fillRect(plot.x * SS, plot.y * SS, 2 * SS, (plot.h + 1) * SS, AXIS);
  img.fillRect(plot.x * SS, (plot.y + plot.h) * SS, (plot.w + 1) * SS, 2 * SS, AXIS);
  // Axis labels: x centred under the ticks, y rotated along the left edge.
  text(plot.x + (plot.w - textWidth(figure.xLabel) * TEXT_SCALE) / 2, L.legend.y - 8 - GLYPH_HEIGHT * TEXT_SCALE, figure.xLabel, TEXT_SCALE, INK);
  // A y label longer than the plot is tall is drawn at half size rather than over the title.
  const yScale = textWidth(figure.yLabel) * TEXT_SCALE <= plot.h ? TEXT_SCALE : 1;
  text(PAD, plot.y + (plot.h + textWidth(figure.yLabel) * yScale) / 2, figure.yLabel, yScale, INK, true);

  const colors = figureColors(figure).map(parseHex);
  const finite = figure.series.map((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  if (finite.every((p) => p.length === 0)) {
    const msg = "no data";
    text(plot.x + (plot.w - textWidth(msg) * TEXT_SCALE) / 2, plot.y + plot.h / 2, msg, TEXT_SCALE, MUTED);
  }
  // Solid series first, dashed ones on top, thinner and with staggered dashes that share each dash
  // period with a gap: where series coincide (a run without consensus accepts all it proposes; every
  // run proposes the same count), each dashed colour shows in turn and a solid one in the gap.
  const nDashed = figure.series.filter((s) => s.dashed).length;
  const on = nDashed <= 1 ? DASH[0] : 5;
  const period = nDashed <= 1 ? DASH[0] + DASH[1] : on * nDashed + DASH[1];
  const order = figure.series.map((s, i) => ({ s, i })).sort((a, b) => Number(a.s.dashed ?? false) - Number(b.s.dashed ?? false) || a.i - b.i);
  let dashedRank = 0;
  for (const { s, i } of order) {
    const color = colors[i]!;
    const pts = finite[i]!;
    const dash = s.dashed ? ([on * SS, (period - on) * SS] as const) : undefined;
    let phase = s.dashed ? (period - dashedRank++ * on) * SS : 0;
    const width = (s.dashed ? DASHED_WIDTH : LINE_WIDTH) * SS;
    for (let j = 1; j < pts.length; j++) {
      phase = img.line(sx(pts[j - 1]![0]), sy(pts[j - 1]![1]), sx(pts[j]![0]), sy(pts[j]![1]), width, color, dash, phase);
    }
    if (pts.length <= MARKER_LIMIT) for (const [x, y] of pts) img.disk(sx(x), sy(y), MARKER_RADIUS * SS, color);
  }
  figure.series.forEach((s, i) => {
    // Legend entry: a short line (dashed like the series) and the name.
    const color = colors[i]!;
    const it = L.legendItems[i]!;
    const my = (it.y + (7 * TEXT_SCALE) / 2) * SS;
    img.line(it.x * SS, my, (it.x + SWATCH) * SS, my, (s.dashed ? DASHED_WIDTH : LINE_WIDTH) * SS, color, s.dashed ? [6 * SS, 4 * SS] : undefined);
    text(it.x + SWATCH + 6, it.y, s.name, TEXT_SCALE, INK);
  });
  const out = img.downsample(SS);
  return encodePng(out.width, out.height, out.data);
}
