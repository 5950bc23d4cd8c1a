import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { DemoReport, DemoRun } from "../report/types.js";
import { ensureBaseModels } from "./base-models.js";
import { resolveDemoConfig, type DemoConfig } from "./config.js";
import { demoTask, taskMinDifficulty } from "./demo-tasks.js";
import type { DemoOutput } from "./progress.js";
import { runDemo } from "./run-demo.js";
import { selectVariants } from "./variants.js";
import { writeDemoReport } from "./write-report.js";
import { namesGameTask } from "./game-demo.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Flags of `autodidact demo` (and `npm start`). */
export const demoOptions = defineOptions({
  task: { type: "enum", values: ["addition", "g2p"], help: "the task: reversed addition, or grapheme-to-phoneme on the CMU dictionary (real data)", default: "addition" },
  quick: { type: "bool", help: "a small run of the same path (fewer rounds, samples and steps): a few minutes (CI)" },
  seed: { type: "int", help: "the run's seed (proposals, probes, training mixes); seeded runs of one configuration differ only by it", min: 0, max: 2 ** 31 - 1 },
  labels: { type: "enum", values: ["base", "validation-all"], help: "where the gate may read validation labels: the base range (what a real user has) or, as the named ablation, every length", default: "base" },
  consensus: { type: "bool", help: "critics must reach consensus (--no-consensus: every proposed sample is accepted, the ablation)", default: true },
  replace: { type: "bool", help: "each round's accepted samples replace the earlier ones instead of accumulating (ablation)" },
  all: { type: "bool", help: "run the default and both ablations (--no-consensus, --labels validation-all) one after the other" },
  rounds: { type: "int", help: "self-improvement rounds (default: the recipe's)", min: 1, max: 64 },
  samples: { type: "int", help: "problems proposed per round (default: the recipe's)", min: 1, max: 4096 },
  seeds: { type: "list", help: "one independently seeded lineage per seed; the first generates, the others are model critics (default: the recipe's)" },
  modelApprovals: { type: "int", help: "model critics that must give the generator's answer (default: all of them)", min: 1 },
  config: { type: "string", help: "JSON file with any part of the demo configuration (recipe, critics, policy, gate)", placeholder: "<file>" },
  set: { type: "list", help: "override one configuration field: key=value (dotted keys, e.g. round.steps=300), comma-free values", placeholder: "<key=value>" },
  base: { type: "string", help: "folder of the base models (lineage-<seed>/); missing ones are trained and saved there", placeholder: "<dir>" },
  out: { type: "string", help: "where the report goes (report.html, report.json, figures/*.png)", default: ".autodidact/demo", placeholder: "<dir>" },
  natsUrl: { type: "string", help: "use this NATS (JetStream on) instead of starting nats-server", env: "NATS_URL" },
  keepOpen: { type: "bool", help: "keep the mesh and its dashboard running after the report until Ctrl-C (default: on a terminal)" },
});

/** Earlier runs of the same configuration kept in `<out>/runs/`, so the report shows the ablations side by side. */
async function previousRuns(outDir: string, configKey: string): Promise<DemoRun[]> {
  const dir = join(outDir, "runs");
  const names = await readdir(dir).catch(() => [] as string[]);
  const runs: DemoRun[] = [];
  for (const n of names.filter((f) => f.endsWith(".json")).sort()) {
    try {
      const saved = JSON.parse(await readFile(join(dir, n), "utf8")) as { configKey: string; run: DemoRun };
      if (saved.configKey === configKey) runs.push(saved.run);
    } catch {
      // an unreadable leftover is not a reason to fail the demo
    }
  }
  return runs;
}

async function saveRun(outDir: string, configKey: string, run: DemoRun): Promise<void> {
  const dir = join(outDir, "runs");
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${run.name}.json`);
  await writeFile(`${path}.tmp`, JSON.stringify({ configKey, run }, null, 1));
  await rename(`${path}.tmp`, path);
}

const ORDER = ["default", "no-consensus", "validation-all", "replace"];

/**
 * `autodidact demo`: the self-improvement experiment on a local mesh, with a live per-round table,
 * a report (HTML, PNG, JSON) at the end, and the dashboard left up on a terminal. Returns the exit code.
 */
export async function demoCommand(argv: readonly string[], io: { out?: DemoOutput; signal?: AbortSignal } = {}): Promise<number> {
  const out: DemoOutput = io.out ?? { isTTY: process.stdout.isTTY === true, write: (s) => void process.stdout.write(s) };
  // A game task runs self-play instead (apps/demo/game-demo.ts).
  if (namesGameTask(argv)) return (await import("./game-demo.js")).gameDemoCommand(argv, { write: (s) => out.write(s), ...(io.signal ? { signal: io.signal } : {}) });
  const parsed = demoOptions.parse(argv, process.env);
  if (parsed.help) {
    out.write(demoOptions.help({ usage: "autodidact demo [options]" }) + "\n");
    return 0;
  }
  const v = parsed.values;
  // The demo's own process shows the table; its library logs only warnings (services log to files).
  process.env["AUTODIDACT_LOG_LEVEL"] ??= "warn";
  const overrides = [...(v.set ?? [])];
  if (v.rounds !== undefined) overrides.push(`rounds=${v.rounds}`);
  if (v.samples !== undefined) overrides.push(`samplesPerRound=${v.samples}`);
  if (v.seeds !== undefined && v.seeds.length > 0) overrides.push(`seeds=${JSON.stringify(v.seeds.map(Number))}`);
  if (v.modelApprovals !== undefined) overrides.push(`modelApprovals=${v.modelApprovals}`);
  if (v.seed !== undefined) overrides.push(`seed=${v.seed}`);
  const quick = v.quick === true;
  const config: DemoConfig = await resolveDemoConfig({
    quick,
    baseDir: v.base ?? join(repoRoot, "models", demoTask(v.task).baseDir),
    task: v.task,
    ...(v.config !== undefined ? { configFile: v.config } : {}),
    overrides,
  });
  const outDir = resolve(v.out);
  const configKey = JSON.stringify({ recipe: config.recipe, seed: config.seed });
  const variants = selectVariants({ all: v.all === true, consensus: v.consensus, replace: v.replace === true, labels: v.labels });
  const keepOpen = v.keepOpen ?? out.isTTY;

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const signal = io.signal ? AbortSignal.any([io.signal, controller.signal]) : controller.signal;
  try {
    const r = config.recipe;
    out.write(
      `Autodidact demo: ${r.task}, ${r.seeds.length} lineages (${r.model.numLayers} layers x ${r.model.hiddenSize}, NoPE), base ${taskMinDifficulty(r)}..${r.baseDigits}, ` +
        `${r.rounds} rounds x ${r.samplesPerRound} proposals, ${r.round.steps} ${r.mode} steps per lineage per round\n`,
    );
    await ensureBaseModels(config, out);
    let last: Awaited<ReturnType<typeof runDemo>> | undefined;
    for (const variant of variants) {
      await last?.stop();
      const stateDir = join(outDir, "state", variant.name);
      await rm(stateDir, { recursive: true, force: true });
      await mkdir(stateDir, { recursive: true });
      out.write(`\n== run: ${variant.name} — ${variant.description}\n`);
      last = await runDemo({
        config,
        variant,
        stateDir,
        out,
        signal,
        ...(v.natsUrl !== undefined ? { natsUrl: v.natsUrl } : {}),
        onDashboard: (url) => out.write(`dashboard: ${url}\n`),
        onRound: (run) => saveRun(outDir, configKey, run),
      });
      await saveRun(outDir, configKey, last.run);
    }
    const runs = (await previousRuns(outDir, configKey)).sort((a, b) => ORDER.indexOf(a.name) - ORDER.indexOf(b.name));
    const report: DemoReport = {
      format: "autodidact.demo-report/1",
      createdAt: new Date().toISOString(),
      task: config.recipe.task,
      config: { ...config, recipe: config.recipe } as unknown as Record<string, unknown>,
      frontierThreshold: config.recipe.frontierThreshold,
      frontierFrom: config.recipe.frontierFrom,
      runs,
      ...(last?.dashboardUrl ? { dashboardUrl: last.dashboardUrl } : {}),
    };
    const written = await writeDemoReport(outDir, report);
    out.write(`\nreport: ${written.html}\n  data: ${written.json}\n  plots: ${written.pngs.length} PNG files in ${join(outDir, "figures")}\n`);
    if (last && keepOpen && last.dashboardUrl && !signal.aborted) {
      out.write(`dashboard: ${last.dashboardUrl}  (the mesh keeps running; Ctrl-C to stop)\n`);
      await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
    }
    await last?.stop();
    return 0;
  } catch (err) {
    if (signal.aborted) {
      out.write("\ninterrupted\n");
      return 130;
    }
    throw err instanceof AutodidactError ? err : new AutodidactError(`demo failed: ${err instanceof Error ? err.message : String(err)}`, Code.Internal, { cause: err });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
