/**
 * The demo, N seeded runs (on demand, not in CI: `npm run bench:demo -- [--seeds 1,2,3] [--ablations]
 * [--quick] [--out DIR] [--set key=value]...`; see README.md beside this file). Each run is
 * `autodidact demo --seed S` as a user runs it (its own local mesh and conductor, one after the other),
 * its output kept in `<out>/<variant>-s<seed>.log`; the table comes from each run's report.json.
 * `--ablations` adds `--no-consensus` and `--labels validation-all` for every seed; `--variants` picks
 * variants by name instead. `--reuse` reads a run whose report is already in `<out>` instead of running
 * it again, so a table can be built in pieces (the seeds today, an ablation tomorrow).
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { DemoReport } from "../../apps/report/types.js";
import { benchRow, formatBench, type BenchRow } from "../../apps/demo/runs-table.js";

const cli = fileURLToPath(new URL("../../bin/autodidact.mjs", import.meta.url));

/** Each variant's demo flags. */
const VARIANT_FLAGS: Readonly<Record<string, string[]>> = { default: [], "no-consensus": ["--no-consensus"], "validation-all": ["--labels", "validation-all"] };

/** The bench's flags. */
function parseArgs(argv: readonly string[]): { seeds: number[]; variants: string[]; reuse: boolean; quick: boolean; out: string; extra: string[] } {
  const out = { seeds: [1, 2, 3], variants: ["default"], reuse: false, quick: false, out: ".autodidact/bench-demo", extra: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--seeds") out.seeds = argv[++i]!.split(",").map(Number);
    else if (a === "--ablations") out.variants = Object.keys(VARIANT_FLAGS);
    else if (a === "--variants") out.variants = argv[++i]!.split(",");
    else if (a === "--reuse") out.reuse = true;
    else if (a === "--quick") out.quick = true;
    else if (a === "--out") out.out = argv[++i]!;
    else if (a === "--set") out.extra.push("--set", argv[++i]!);
    else throw new Error(`unknown argument ${a} (--seeds 1,2,3 --ablations | --variants a,b --reuse --quick --out DIR --set key=value)`);
  }
  const unknown = out.variants.filter((v) => VARIANT_FLAGS[v] === undefined);
  if (unknown.length > 0) throw new Error(`unknown variant ${unknown.join(", ")} (${Object.keys(VARIANT_FLAGS).join(", ")})`);
  if (out.seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error("--seeds wants integers, e.g. --seeds 1,2,3");
  return out;
}


/** Runs one demo; resolves with its report's run and the base range, rejects when it fails. */
async function runOne(dir: string, variant: string, seed: number, o: ReturnType<typeof parseArgs>): Promise<BenchRow> {
  const out = join(dir, `${variant}-s${seed}`);
  if (o.reuse && (await access(join(out, "report.json")).then(() => true, () => false))) return readRow(out, variant, seed);
  const log = createWriteStream(`${out}.log`);
  const args = [cli, "demo", "--seed", String(seed), ...VARIANT_FLAGS[variant]!, ...(o.quick ? ["--quick"] : []), ...o.extra, "--out", out, "--no-keep-open"];
  log.write(`# node ${args.join(" ")}\n# load average at start: ${loadavg().map((x) => x.toFixed(1)).join(" ")}\n`);
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  log.end(`# exit ${code}, load average at end: ${loadavg().map((x) => x.toFixed(1)).join(" ")}\n`);
  if (code !== 0) throw new Error(`${variant} seed ${seed} exited ${code}: see ${out}.log`);
  return readRow(out, variant, seed);
}

/** The table row of a finished run, from its report.json. */
async function readRow(out: string, variant: string, seed: number): Promise<BenchRow> {
  const report = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as DemoReport;
  const run = report.runs.find((r) => r.name === variant && (r.seed === undefined || r.seed === seed));
  if (run === undefined) throw new Error(`${out}/report.json has no run ${variant}`);
  const baseDigits = (report.config as { recipe: { baseDigits: number } }).recipe.baseDigits;
  return benchRow(run, baseDigits, seed);
}

const o = parseArgs(process.argv.slice(2));
const dir = resolve(o.out);
await mkdir(dir, { recursive: true });
const variants = o.variants;
const rows: BenchRow[] = [];
const started = Date.now();
for (const seed of o.seeds) {
  for (const variant of variants) {
    process.stdout.write(`${variant} seed ${seed} ... `);
    try {
      const row = await runOne(dir, variant, seed, o);
      rows.push(row);
      process.stdout.write(`test frontier ${row.baseFrontier} -> ${row.finalFrontier} in ${row.seconds.toFixed(0)} s\n`);
    } catch (err) {
      process.stdout.write(`failed: ${(err as Error).message}\n`);
    }
  }
}
const table = formatBench(rows);
const note = `${rows.length} runs in ${((Date.now() - started) / 60_000).toFixed(1)} min; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(" ")}`;
process.stdout.write(`\n${table}\n\n${note}\n`);
await writeFile(join(dir, "bench.md"), `${table}\n\n${note}\n`);
process.exitCode = rows.length === o.seeds.length * variants.length ? 0 : 1;
