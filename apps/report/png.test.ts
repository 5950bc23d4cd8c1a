import { randomBytes } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { figureColors, seriesColor } from "./colors.js";
import { reportFigures } from "./figures.js";
import { chartLayout, renderPng } from "./png-chart.js";
import { crc32, encodePng } from "./png.js";
import { countColor, decodePng, sampleReport } from "./test-support.js";
import type { Figure } from "./types.js";

const figures = reportFigures(sampleReport());

describe("encodePng", () => {
  it("computes the same CRC-32 as zlib", () => {
    for (const n of [0, 1, 13, 1000]) {
      const bytes = randomBytes(n);
      expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    }
    expect(crc32(Buffer.from("IEND"))).toBe(0xae426082);
  });

  it("round-trips pixels through IHDR, IDAT and IEND", () => {
    const w = 7;
    const h = 5;
    const rgb = new Uint8Array(randomBytes(w * h * 3));
    const png = decodePng(encodePng(w, h, rgb));
    expect(png.chunks.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
    expect(png.chunks.every((c) => c.crcOk)).toBe(true);
    expect([png.width, png.height, png.bitDepth, png.colorType]).toEqual([w, h, 8, 2]);
    expect(Buffer.from(png.rgb).equals(Buffer.from(rgb))).toBe(true);
  });

  it("rejects a buffer of the wrong size with INVALID_ARGUMENT", () => {
    expect(() => encodePng(2, 2, new Uint8Array(11))).toThrow(/invalid_argument.*expected 12 bytes/);
    expect(() => encodePng(0, 2, new Uint8Array(0))).toThrow(/invalid_argument/);
  });
});

describe("renderPng", () => {
  it.each(figures.map((f) => [f.id, f] as const))("%s: a valid PNG of the requested size with every series drawn in its colour", (_id, figure) => {
    const buf = renderPng(figure);
    const png = decodePng(buf);
    expect(png.chunks[0]!.type).toBe("IHDR");
    expect(png.chunks[png.chunks.length - 1]!.type).toBe("IEND");
    expect(png.chunks.filter((c) => !c.crcOk)).toEqual([]);
    expect([png.width, png.height, png.bitDepth, png.colorType]).toEqual([960, 540, 8, 2]);
    expect(png.filters).toHaveLength(540);
    expect(png.filters.every((f) => f >= 0 && f <= 4)).toBe(true);
    // Inside the plot area (the legend swatches lie outside it) each series has pixels of its exact colour.
    const { plot } = chartLayout(figure);
    const colors = figureColors(figure);
    expect(new Set(colors).size).toBe(figure.series.length);
    figure.series.forEach((s, i) => {
      if (s.points.length === 0) return;
      expect(countColor(png, colors[i]!, plot), `${figure.id} / ${s.name}`).toBeGreaterThan(20);
    });
    // The background is white and the image is not blank: a real chart was drawn.
    expect(countColor(png, "#ffffff", { x: 0, y: 0, w: 960, h: 540 })).toBeGreaterThan(960 * 540 * 0.5);
    expect(countColor(png, "#ffffff", { x: 0, y: 0, w: 960, h: 540 })).toBeLessThan(960 * 540 * 0.97);
  });

  it("keeps colours distinct for many series, categorical and sequential", () => {
    const series = Array.from({ length: 30 }, (_, i) => ({ name: `s${i}`, points: [[0, i]] as const }));
    for (const colors of ["categorical", "sequential"] as const) {
      const c = figureColors({ series, colors });
      expect(new Set(c).size, colors).toBe(30);
      expect(c.every((h) => /^#[0-9a-f]{6}$/.test(h))).toBe(true);
    }
  });

  it("honours width and height", () => {
    const png = decodePng(renderPng(figures[0]!, { width: 640, height: 400 }));
    expect([png.width, png.height]).toEqual([640, 400]);
    expect(png.filters).toHaveLength(400);
  });

  it("draws a line between points, and a dashed line with fewer pixels than a solid one", () => {
    const line = (dashed: boolean): Figure => ({ id: "t", title: "t", xLabel: "x", yLabel: "y", series: [{ name: "s", points: [[0, 0], [1, 1]], dashed }] });
    const L = chartLayout(line(false));
    // A box around the middle of the diagonal, far from both end markers.
    const mid = { x: Math.round(L.plot.x + L.plot.w * 0.3), y: Math.round(L.plot.y + L.plot.h * 0.3), w: Math.round(L.plot.w * 0.4), h: Math.round(L.plot.h * 0.4) };
    const solid = countColor(decodePng(renderPng(line(false))), seriesColor(0), mid);
    const dashed = countColor(decodePng(renderPng(line(true))), seriesColor(0), mid);
    expect(solid).toBeGreaterThan(100);
    expect(dashed).toBeGreaterThan(20);
    expect(dashed).toBeLessThan(solid * 0.8);
  });

  it("shows every colour where series coincide: dashed lines drawn over solid ones, with staggered dashes", () => {
    const pts = [[1, 10], [2, 20], [3, 15]] as const;
    const fig: Figure = {
      id: "c",
      title: "c",
      xLabel: "x",
      yLabel: "y",
      series: [
        { name: "a proposed", points: pts, dashed: true },
        { name: "a accepted", points: pts },
        { name: "b proposed", points: pts, dashed: true },
        { name: "c proposed", points: pts, dashed: true },
      ],
    };
    const png = decodePng(renderPng(fig));
    const { plot } = chartLayout(fig);
    fig.series.forEach((s, i) => expect(countColor(png, seriesColor(i), plot), s.name).toBeGreaterThan(20));
  });

  it("places a point where the axes say it is", () => {
    const fig: Figure = { id: "p", title: "p", xLabel: "x", yLabel: "y", yMin: 0, yMax: 1, series: [{ name: "s", points: [[2, 0.5]] }, { name: "t", points: [[1, 0], [3, 1]] }] };
    const L = chartLayout(fig);
    expect(L.xDomain).toEqual([1, 3]);
    expect(L.yDomain).toEqual([0, 1]);
    const png = decodePng(renderPng(fig));
    const cx = Math.round(L.plot.x + L.plot.w / 2);
    const cy = Math.round(L.plot.y + L.plot.h / 2);
    // The lone point (2, 0.5) is a marker centred in the plot; nothing of its colour elsewhere in the plot.
    expect(countColor(png, seriesColor(0), { x: cx - 4, y: cy - 4, w: 9, h: 9 })).toBeGreaterThan(5);
    expect(countColor(png, seriesColor(0), L.plot)).toBe(countColor(png, seriesColor(0), { x: cx - 6, y: cy - 6, w: 13, h: 13 }));
  });

  it("renders an empty figure and a figure whose series have one point", () => {
    const empty = decodePng(renderPng({ id: "e", title: "empty", xLabel: "x", yLabel: "y", series: [] }));
    expect(empty.chunks.every((c) => c.crcOk)).toBe(true);
    const single = decodePng(renderPng({ id: "o", title: "one", xLabel: "x", yLabel: "y", series: [{ name: "a", points: [[1, 1]] }] }));
    expect(countColor(single, seriesColor(0), chartLayout({ id: "o", title: "one", xLabel: "x", yLabel: "y", series: [{ name: "a", points: [[1, 1]] }] }).plot)).toBeGreaterThan(20);
  });

  it("refuses a size too small to hold a plot", () => {
    expect(() => renderPng(figures[0]!, { width: 60, height: 40 })).toThrow(/invalid_argument.*no room/);
  });

  it("uses integer ticks for integer data and round ticks for fractions", () => {
    const frontier = chartLayout(figures[0]!);
    expect(frontier.yTicks.every(Number.isInteger)).toBe(true);
    expect(frontier.xTicks).toEqual([0, 1, 2, 3]);
    const acc = chartLayout(figures[1]!);
    expect(acc.yTicks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });
});
