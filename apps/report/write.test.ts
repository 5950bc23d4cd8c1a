import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "../../src/platform/errors/index.js";
import { reportFigures } from "./figures.js";
import { decodePng, sampleReport } from "./test-support.js";
import { parseDemoReport, writeReport } from "./write.js";

const run = promisify(execFile);

describe("writeReport", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "autodidact-report-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes report.html, report.json (the report plus every figure) and one valid PNG per figure", async () => {
    const report = sampleReport();
    const out = await writeReport(join(dir, "a"), report);
    const figures = reportFigures(report);
    expect(out.html).toBe(join(dir, "a", "report.html"));
    expect(out.json).toBe(join(dir, "a", "report.json"));
    expect(out.pngs).toEqual(figures.map((f) => join(dir, "a", "figures", `${f.id}.png`)));
    const json = JSON.parse(await readFile(out.json, "utf8"));
    expect(json).toEqual({ ...report, figures });
    // The JSON round-trips: parsing it back gives the report, which renders the same figures.
    const back = parseDemoReport(await readFile(out.json, "utf8"));
    expect(back).toEqual(report);
    expect(reportFigures(back)).toEqual(figures);
    for (const p of out.pngs) {
      const png = decodePng(await readFile(p));
      expect(png.chunks.every((c) => c.crcOk)).toBe(true);
    }
    const html = await readFile(out.html, "utf8");
    for (const f of figures) expect(html).toContain(`href="figures/${f.id}.png"`);
    // Nothing half-written is left behind.
    const all = [...(await readdir(join(dir, "a"))), ...(await readdir(join(dir, "a", "figures")))];
    expect(all.filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("overwrites an earlier report in place", async () => {
    const report = sampleReport();
    await writeReport(join(dir, "b"), { ...report, task: "first" });
    const out = await writeReport(join(dir, "b"), { ...report, task: "second" });
    expect(JSON.parse(await readFile(out.json, "utf8")).task).toBe("second");
  });

  it("fails with a code when the directory cannot be written", async () => {
    const file = join(dir, "not-a-dir");
    await writeFile(file, "x");
    const err = await writeReport(join(file, "sub"), sampleReport()).catch((e: unknown) => e);
    expect((err as { code: Code }).code).toBe(Code.FailedPrecondition);
    expect((err as Error).message).toMatch(/cannot create .*not-a-dir/);
  });
});

describe("parseDemoReport", () => {
  it.each([
    ["not json", "{", /not JSON/],
    ["wrong format", JSON.stringify({ ...sampleReport(), format: "other/1" }), /format is "other\/1"/],
    ["runs missing", JSON.stringify({ ...sampleReport(), runs: undefined }), /runs must be an array/],
    ["round without lineages", JSON.stringify({ ...sampleReport(), runs: [{ ...sampleReport().runs[0]!, rounds: [{ round: 1, accuracyByLength: [] }] }] }), /rounds\[0\] needs/],
  ])("rejects %s with INVALID_ARGUMENT", (_what, text, message) => {
    try {
      parseDemoReport(text);
      expect.unreachable();
    } catch (err) {
      expect((err as { code: Code }).code).toBe(Code.InvalidArgument);
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe("scripts/render-report.ts", () => {
  it("re-renders a report from its report.json, and says why it cannot", async () => {
    const dir = await mkdtemp(join(tmpdir(), "autodidact-render-"));
    try {
      const first = await writeReport(join(dir, "first"), sampleReport());
      const { stdout } = await run(process.execPath, ["--import", "tsx", "scripts/render-report.ts", first.json, join(dir, "again")]);
      expect(stdout).toContain("report.html");
      expect(await readFile(join(dir, "again", "report.html"), "utf8")).toBe(await readFile(first.html, "utf8"));
      expect(await readFile(join(dir, "again", "report.json"), "utf8")).toBe(await readFile(first.json, "utf8"));
      const pngs = await readdir(join(dir, "again", "figures"));
      expect(pngs.sort()).toEqual(reportFigures(sampleReport()).map((f) => `${f.id}.png`).sort());
      const bad = await run(process.execPath, ["--import", "tsx", "scripts/render-report.ts", join(dir, "missing.json"), join(dir, "x")]).catch((e: { code: number; stderr: string }) => e);
      expect((bad as { code: number }).code).toBe(1);
      expect((bad as { stderr: string }).stderr).toMatch(/render-report: .*missing\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
