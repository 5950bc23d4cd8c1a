import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DemoReport } from "../report/types.js";

/** Writes the demo report (interim: JSON only until src/report renders HTML and PNG). */
export async function writeDemoReport(dir: string, report: DemoReport): Promise<{ html: string; json: string; pngs: string[] }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, "report.json");
  await writeFile(`${json}.tmp`, JSON.stringify(report, null, 1));
  await rename(`${json}.tmp`, json);
  return { html: json, json, pngs: [] };
}
