import { describe, expect, it } from "vitest";
import { figureColors } from "./colors.js";
import { reportFigures } from "./figures.js";
import { renderReportHtml } from "./html.js";
import { sampleReport } from "./test-support.js";
import type { DemoReport } from "./types.js";

const svgs = (html: string): Map<string, string> => {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<svg[^>]*data-plot="([^"]+)"[\s\S]*?<\/svg>/g)) out.set(m[1]!, m[0]);
  return out;
};
const table = (html: string, run: string): string => {
  const m = new RegExp(`<table class="rounds" data-run="${run}">([\\s\\S]*?)</table>`).exec(html);
  if (!m) throw new Error(`no rounds table for ${run}`);
  return m[1]!;
};
const cells = (row: string): string[] => [...row.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) => m[1]!);

describe("renderReportHtml", () => {
  const report = sampleReport();
  const figures = reportFigures(report);
  const html = renderReportHtml(report, figures);

  it("has one inline SVG per figure, each with exactly the figure's points", () => {
    const plots = svgs(html);
    expect([...plots.keys()]).toEqual(figures.map((f) => f.id));
    for (const f of figures) {
      const svg = plots.get(f.id)!;
      const circles = [...svg.matchAll(/<circle[^>]*data-series="([^"]*)" data-x="([^"]*)" data-y="([^"]*)"/g)];
      expect(circles).toHaveLength(f.series.reduce((n, s) => n + s.points.length, 0));
      for (const s of f.series) {
        const drawn = circles.filter((c) => c[1] === s.name).map((c) => [Number(c[2]), Number(c[3])]);
        expect(drawn, `${f.id} / ${s.name}`).toEqual(s.points.map(([x, y]) => [x, y]));
        // Same colour as in the PNG.
        const color = figureColors(f)[f.series.indexOf(s)]!;
        if (s.points.length > 0) expect(svg).toContain(`fill="${color}" data-series="${s.name}"`);
      }
    }
  });

  it("links every figure's PNG and is self-contained (no scripts, stylesheets or images from elsewhere)", () => {
    for (const f of figures) expect(html).toContain(`<a href="figures/${f.id}.png">`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    const external = [...html.matchAll(/(?:href|src)="(https?:[^"]*)"/g)].map((m) => m[1]);
    expect(external).toEqual([report.dashboardUrl]);
  });

  it("tables every round of every run: length, proposed/accepted, label accuracies, accuracy per length, frontier, status", () => {
    for (const run of report.runs) {
      const body = table(html, run.name);
      const rows = [...body.matchAll(/<tr[^>]*data-round="(\d+)"[^>]*>([\s\S]*?)<\/tr>/g)];
      expect(rows.map((r) => Number(r[1]))).toEqual([0, ...run.rounds.map((r) => r.round)]);
      expect(cells(rows[0]![2]!)).toContain(String(run.base.frontier));
      run.rounds.forEach((r, i) => {
        const c = cells(rows[i + 1]![2]!);
        expect(c.slice(0, 5)).toEqual([r.round, r.labelLength, r.proposed, r.accepted, r.poolSize].map(String));
        expect(c[5]).toBe(r.acceptedLabelAccuracy === null ? "–" : r.acceptedLabelAccuracy.toFixed(3));
        expect(c[6]).toBe(r.proposedLabelAccuracy === null ? "–" : r.proposedLabelAccuracy.toFixed(3));
        const acc = [...c[7]!.matchAll(/data-length="(\d+)" data-accuracy="([^"]+)"/g)].map((m) => ({ length: Number(m[1]), accuracy: Number(m[2]) }));
        expect(acc).toEqual(r.accuracyByLength);
        expect(c[8]).toBe(String(r.frontier));
        expect(c[9]).toContain(r.status);
        for (const l of r.lineages) expect(c[10]).toContain(`data-lineage="${l.lineage}" data-status="${l.status}"`);
        for (const reason of r.lineages.flatMap((l) => l.reasons)) expect(c[10]).toContain(reason.replace(/'/g, "&#39;"));
      });
    }
  });

  it("summarises the runs side by side: base -> final frontier and final accuracy per length", () => {
    const summary = /<table id="summary">([\s\S]*?)<\/table>/.exec(html)![1]!;
    for (const run of report.runs) {
      const row = new RegExp(`<tr data-run="${run.name}">([\\s\\S]*?)</tr>`).exec(summary)![1]!;
      const last = run.rounds[run.rounds.length - 1]!;
      expect(row).toContain(`${run.base.frontier} &rarr; ${last.frontier}`);
      const acc = [...row.matchAll(/data-length="(\d+)" data-accuracy="([^"]+)"/g)].map((m) => ({ length: Number(m[1]), accuracy: Number(m[2]) }));
      expect(acc).toEqual(last.accuracyByLength);
    }
  });

  it("shows the configuration and the dashboard address", () => {
    const setting = (key: string): string | undefined => new RegExp(`data-key="${key}"><span class="k">${key}</span> <code>([^<]*)</code>`).exec(html)?.[1];
    expect(setting("recipe")).toBe("quick");
    // Nested settings get an entry each under a dotted key; arrays stay whole.
    expect(setting("model.layers")).toBe("2");
    expect(setting("model.dModel")).toBe("64");
    expect(setting("seeds")).toBe("[1,2]");
    expect(setting("critics")).toBe("[&quot;sympy-check&quot;,&quot;self-consistency&quot;]");
    expect(html).toContain(`<a href="${report.dashboardUrl}">${report.dashboardUrl}</a>`);
    expect(renderReportHtml({ ...report, dashboardUrl: undefined }, figures)).toContain("No dashboard address was recorded");
  });

  it("escapes names and reasons that carry markup", () => {
    const base = sampleReport();
    const run = base.runs[0]!;
    const evil: DemoReport = {
      ...base,
      task: "<b>t</b>",
      runs: [{ ...run, name: '<script>alert("x")</script>', rounds: run.rounds.map((r) => ({ ...r, lineages: r.lineages.map((l) => ({ ...l, reasons: ["<img src=x>"] })) })) }],
    };
    const out = renderReportHtml(evil, reportFigures(evil));
    expect(out).not.toContain("<script>");
    expect(out).not.toContain("<img");
    expect(out).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
  });
});
