import { describe, expect, it } from "vitest";
import { GLYPH_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyphOf, hasGlyph, MISSING_GLYPH, missingGlyphs, textWidth } from "./font.js";
import { reportFigures } from "./figures.js";
import { chartLayout } from "./png-chart.js";
import { Raster } from "./raster.js";
import { sampleReport } from "./test-support.js";

const ink = (r: Raster): number => {
  let n = 0;
  for (let i = 0; i < r.data.length; i += 3) if (r.data[i] === 0) n++;
  return n;
};

describe("bitmap font", () => {
  it("has a glyph for every character the report's figures draw: titles, labels, legends and tick labels", () => {
    const report = sampleReport();
    const texts = reportFigures(report).flatMap((f) => {
      const L = chartLayout(f);
      return [f.title, f.xLabel, f.yLabel, ...f.series.map((s) => s.name), ...L.xTicks.map((t) => t.toFixed(L.xDecimals)), ...L.yTicks.map((t) => t.toFixed(L.yDecimals)), "no data"];
    });
    expect(missingGlyphs(texts.join(""))).toEqual([]);
    // And the whole printable ASCII range, so user-chosen run names render too.
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");
    expect(missingGlyphs(ascii)).toEqual([]);
  });

  it("gives every character its own shape (no glyph copied over another)", () => {
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
    const shapes = new Map<string, string>();
    for (const ch of ascii) {
      const key = JSON.stringify(glyphOf(ch));
      expect(shapes.get(key), `${ch} looks like ${shapes.get(key)}`).toBeUndefined();
      shapes.set(key, ch);
      expect(glyphOf(ch)).toHaveLength(GLYPH_HEIGHT);
      expect(glyphOf(ch).every((row) => row.length === GLYPH_WIDTH)).toBe(true);
      if (ch !== " ") expect(glyphOf(ch).flat().some(Boolean), ch).toBe(true);
    }
  });

  it("draws a character it lacks as a box instead of skipping it", () => {
    expect(hasGlyph("\u4e2d")).toBe(false);
    expect(missingGlyphs("ab\u4e2d\u00e9c")).toEqual(["\u4e2d", "\u00e9"]);
    const r = new Raster(40, 20);
    r.text(1, 1, "\u4e2d", 1, [0, 0, 0]);
    expect(ink(r)).toBe(MISSING_GLYPH.flat().filter(Boolean).length);
    // The box occupies its cell: the next character starts one advance further.
    const two = new Raster(40, 20);
    two.text(1, 1, "\u4e2d.", 1, [0, 0, 0]);
    expect(two.get(1 + GLYPH_ADVANCE + 1, 1 + 5)).toEqual([0, 0, 0]);
  });

  it("scales glyphs and draws vertical text bottom to top", () => {
    const r = new Raster(40, 40);
    r.text(0, 0, "1", 3, [0, 0, 0]);
    expect(ink(r)).toBe(glyphOf("1").flat().filter(Boolean).length * 9);
    const v = new Raster(20, 40);
    v.text(0, 30, "L", 1, [0, 0, 0], true);
    // "L" is a vertical stroke then a foot: rotated anticlockwise, the stroke becomes a row at the
    // bottom (y = 29) and the foot a column on the right.
    for (let x = 0; x < 7; x++) expect(v.get(x, 29)).toEqual([0, 0, 0]);
    expect(v.get(6, 25)).toEqual([0, 0, 0]);
    expect(textWidth("abc")).toBe(3 * GLYPH_ADVANCE - 1);
  });
});
