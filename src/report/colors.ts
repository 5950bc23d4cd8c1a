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
