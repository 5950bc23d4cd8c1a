// Re-renders a demo report (HTML, PNG plots, JSON) from its report.json, e.g. after a change to the
// report's rendering or to put a copy elsewhere.
// Usage: node --import tsx scripts/render-report.ts <report.json> <outDir>
import { readFile } from "node:fs/promises";
import { AutodidactError } from "../src/platform/errors/index.js";
import { parseDemoReport, writeReport } from "../apps/report/index.js";

const [input, outDir] = process.argv.slice(2);
if (input === undefined || outDir === undefined) {
  console.error("usage: node --import tsx scripts/render-report.ts <report.json> <outDir>");
  process.exit(2);
}
try {
  const report = parseDemoReport(await readFile(input, "utf8"));
  const out = await writeReport(outDir, report);
  console.log(`wrote ${out.html}\n      ${out.json}\n      ${out.pngs.length} plots in ${outDir}/figures`);
} catch (err) {
  console.error(`render-report: ${AutodidactError.from(err).message}`);
  process.exit(1);
}
