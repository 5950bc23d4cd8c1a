/** One line of a chart: its name, colour and points (x ascending). */
export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color?: string;
  readonly dashed?: boolean;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Stable id, set as `data-plot` on the `<svg>` (tests and the page find plots by it). */
  readonly id: string;
  readonly title: string;
  readonly series: readonly Series[];
  readonly xLabel?: string;
  readonly yMin?: number;
  readonly yMax?: number;
  readonly width?: number;
  readonly height?: number;
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

/** Escapes text for HTML and SVG content and attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

/**
 * A line chart as an SVG string, drawn here so the dashboard needs no chart library or CDN. Every
 * point is a `<circle>` carrying its series and values (`data-series`, `data-x`, `data-y`), so a test
 * can check a plot was drawn from real data; an empty chart says "no data yet".
 */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 420;
  const H = o.height ?? 220;
  const m = { l: 48, r: 12, t: 26, b: 44 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const pts = o.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const head = `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="${escapeHtml(o.id)}" data-points="${pts.length}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}">`;
  const title = `<text x="${m.l}" y="16" class="title">${escapeHtml(o.title)}</text>`;
  if (pts.length === 0) {
    return `${head}${title}<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="empty">no data yet</text></svg>`;
  }
  let x0 = Math.min(...pts.map((p) => p[0]));
  let x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = o.yMin ?? Math.min(...pts.map((p) => p[1]));
  let y1 = o.yMax ?? Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [head, title];
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" class="frame"/>`);
  // Whole-number data (frontiers, counts) gets whole-number ticks; anything else five even ones.
  const whole = pts.every((p) => Number.isInteger(p[1])) && Number.isInteger(y0) && Number.isInteger(y1);
  const yStep = whole ? Math.max(1, Math.ceil((y1 - y0) / 4)) : (y1 - y0) / 4;
  for (let i = 0; i <= 4 && y0 + yStep * i <= y1 + 1e-9; i++) {
    const y = y0 + yStep * i;
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${m.l - 4}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end" class="tick">${fmt(y)}</text>`);
  }
  const xs = [...new Set(pts.map((p) => p[0]))].sort((a, b) => a - b);
  const step = Math.max(1, Math.ceil(xs.length / 8));
  xs.forEach((x, i) => {
    if (i % step === 0 || i === xs.length - 1) parts.push(`<text x="${sx(x).toFixed(1)}" y="${m.t + ph + 14}" text-anchor="middle" class="tick">${fmt(x)}</text>`);
  });
  if (o.xLabel) parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 28}" text-anchor="middle" class="axis">${escapeHtml(o.xLabel)}</text>`);
  let lx = m.l;
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const good = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (good.length > 0) {
      const d = good.map(([x, y], j) => `${j === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""} data-series="${escapeHtml(s.name)}"/>`);
      for (const [x, y] of good) {
        parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}" data-series="${escapeHtml(s.name)}" data-x="${x}" data-y="${y}"><title>${escapeHtml(s.name)}: ${fmt(y)} @ ${fmt(x)}</title></circle>`);
      }
    }
    const label = escapeHtml(s.name);
    parts.push(`<rect x="${lx}" y="${H - 12}" width="10" height="4" fill="${color}"/><text x="${lx + 13}" y="${H - 7}" class="legend">${label}</text>`);
    lx += 20 + s.name.length * 6;
  });
  parts.push("</svg>");
  return parts.join("");
}
