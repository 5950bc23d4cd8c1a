import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { reportFigures } from "./figures.js";
import { renderReportHtml } from "./html.js";
import { renderPng } from "./png-chart.js";
import type { DemoReport, Figure } from "./types.js";

/** The JSON file's content: the report plus the data of every figure drawn from it. */
export type DemoReportFile = DemoReport & { readonly figures: readonly Figure[] };

/** Writes a file via a temp file in the same directory and a rename, so readers never see half a file. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new AutodidactError(`report: cannot write ${path}: ${(err as Error).message}`, Code.FailedPrecondition, { cause: err });
  }
}

/**
 * Writes the report into `dir`: `report.json` (the DemoReport plus every figure's data),
 * `figures/<id>.png` and `report.html` (written last, so its PNG links resolve once it exists).
 * Each file is written to a temp name and renamed into place. Returns the paths written.
 */
export async function writeReport(dir: string, report: DemoReport): Promise<{ html: string; json: string; pngs: string[] }> {
  const figures = reportFigures(report);
  const figDir = join(dir, "figures");
  await mkdir(figDir, { recursive: true }).catch((err: unknown) => {
    throw new AutodidactError(`report: cannot create ${figDir}: ${(err as Error).message}`, Code.FailedPrecondition, { cause: err });
  });
  const json = join(dir, "report.json");
  const file: DemoReportFile = { ...report, figures };
  await writeAtomic(json, `${JSON.stringify(file, null, 2)}\n`);
  const pngs: string[] = [];
  for (const figure of figures) {
    const path = join(figDir, `${figure.id}.png`);
    await writeAtomic(path, renderPng(figure));
    pngs.push(path);
  }
  const html = join(dir, "report.html");
  await writeAtomic(html, renderReportHtml(report, figures));
  return { html, json, pngs };
}

/**
 * Reads a DemoReport back from JSON text (a report.json, with or without its `figures`), checking
 * the format tag and the shape the renderers rely on; bad input is an INVALID_ARGUMENT error.
 */
export function parseDemoReport(text: string): DemoReport {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AutodidactError(`report: not JSON: ${(err as Error).message}`, Code.InvalidArgument, { cause: err });
  }
  const bad = (what: string): never => {
    throw new AutodidactError(`report: not a demo report (${what})`, Code.InvalidArgument);
  };
  if (typeof value !== "object" || value === null) return bad("expected an object");
  const o = value as Record<string, unknown>;
  if (o.format !== "autodidact.demo-report/1") bad(`format is ${JSON.stringify(o.format)}, expected "autodidact.demo-report/1"`);
  if (typeof o.frontierThreshold !== "number" || typeof o.frontierFrom !== "number") bad("frontierThreshold/frontierFrom must be numbers");
  if (typeof o.task !== "string" || typeof o.createdAt !== "string") bad("task/createdAt must be strings");
  if (typeof o.config !== "object" || o.config === null) bad("config must be an object");
  if (!Array.isArray(o.runs)) bad("runs must be an array");
  (o.runs as unknown[]).forEach((r, i) => {
    const run = r as Record<string, unknown> | null;
    if (typeof run !== "object" || run === null || typeof run.name !== "string") bad(`runs[${i}] has no name`);
    if (!Array.isArray(run!.rounds)) bad(`runs[${i}].rounds must be an array`);
    const base = run!.base as Record<string, unknown> | undefined;
    if (typeof base !== "object" || base === null || typeof base.frontier !== "number" || !Array.isArray(base.accuracyByLength)) bad(`runs[${i}].base needs frontier and accuracyByLength`);
    (run!.rounds as unknown[]).forEach((d, j) => {
      const round = d as Record<string, unknown> | null;
      if (typeof round !== "object" || round === null || typeof round.round !== "number" || !Array.isArray(round.lineages) || !Array.isArray(round.accuracyByLength)) {
        bad(`runs[${i}].rounds[${j}] needs round, accuracyByLength and lineages`);
      }
    });
  });
  const { figures: _figures, ...report } = o;
  return report as unknown as DemoReport;
}
