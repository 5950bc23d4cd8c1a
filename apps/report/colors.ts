/** The first ten series colours: the dashboard's palette, so a run looks the same on both. */
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

function hslToHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): string => {
    const k = (n + h / 30) % 12;
    const v = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(v * 255)
      .toString(16)
      .padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/**
 * Colour (`#rrggbb`) of the i-th series of a figure, shared by the SVG and the PNG so a series has
 * one colour everywhere. Past the palette, hues step by the golden angle so colours stay distinct.
 */
export function seriesColor(i: number): string {
  return PALETTE[i] ?? hslToHex((i * 137.508) % 360, 0.7, 0.42);
}

// A plasma-like ramp, stopped before its yellow end so every step stays visible on white.
const RAMP = ["#0d0887", "#5b02a3", "#9a179b", "#cb4678", "#eb7852", "#f59e2f"].map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));

function rampColor(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const k = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - k;
  return `#${RAMP[k]!.map((c, j) => Math.round(c + (RAMP[k + 1]![j]! - c) * f).toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The colour of every series of a figure, used by both the SVG and the PNG: distinct hues, or for
 * a "sequential" figure (one series per round) a ramp from dark blue to orange, so later rounds
 * read as later.
 */
export function figureColors(figure: { readonly series: readonly unknown[]; readonly colors?: "categorical" | "sequential" }): string[] {
  const n = figure.series.length;
  if (figure.colors !== "sequential") return figure.series.map((_, i) => seriesColor(i));
  return figure.series.map((_, i) => rampColor(n <= 1 ? 0 : i / (n - 1)));
}
