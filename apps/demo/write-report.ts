import type { DemoReport } from "../report/index.js";
import { writeReport } from "../report/index.js";

/** Writes the demo report: report.html, report.json and figures/<id>.png (rendered by apps/report). */
export async function writeDemoReport(dir: string, report: DemoReport): Promise<{ html: string; json: string; pngs: string[] }> {
  return writeReport(dir, report);
}
