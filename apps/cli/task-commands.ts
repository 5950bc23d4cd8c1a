// `autodidact task check <name|module>` and `autodidact task list`: what a user runs on their own task
// before the mesh does — every split drawn, determinism, disjointness, tokenizer coverage, answer rules.
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { defineOptions, serviceOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { isPathReference } from "../../src/domain/task-modules/index.js";
import { checkTaskPack, getTaskPack, listTaskPacks, loadTaskModules, taskIdentity, type TaskCheckReport, type TaskPack } from "../../src/domain/tasks/index.js";
import { formatTable } from "./table.js";

const checkOptions = defineOptions({
  taskModule: serviceOptions.taskModule,
  taskModuleDir: serviceOptions.taskModuleDir,
  draws: { type: "int", help: "prompts drawn per difficulty from the sampler and the anchor source", default: 64, min: 1, max: 100_000 },
  json: { type: "bool", help: "print the report as JSON" },
});

const USAGE = `Usage: autodidact task check <name|module> [options]
       autodidact task list [--task-module <m> ...]

check: draws from every split and the prompt sampler and checks determinism per seed, disjointness of
the held-out splits from everything trained on or proposed from, tokenizer coverage and the pack's own
answers against its equivalence and format rules; prints counts per split and difficulty and examples.
<module> is a task module path (.ts/.js), a data-set pack folder or its pack.json. It loads from
--task-module-dir (AUTODIDACT_TASK_MODULE_PATH) — by default the module's own folder: whoever runs this
command is the operator. Exit 0 only when every check passes.`;

/** Resolves the pack to check: a built-in or registered name, or a module loaded the way services load it. */
async function packOf(target: string, modules: readonly string[], dirs: readonly string[]): Promise<TaskPack> {
  const isModule = isPathReference(target) || existsSync(target);
  const moduleDirs = dirs.length > 0 ? dirs : [...new Set([...modules, ...(isModule ? [target] : [])].map((m) => (existsSync(m) && !/\.[cm]?[jt]s$|\.json$/.test(m) ? resolve(m) : dirname(resolve(m)))))];
  const loaded = await loadTaskModules({ modules: isModule ? [...modules, target] : modules, dirs: moduleDirs });
  return getTaskPack(isModule ? loaded[loaded.length - 1]!.name : target);
}

/** The report as text: identity, each check, counts per split and difficulty, examples. */
export function formatCheckReport(report: TaskCheckReport, identity: string): string {
  const lines = [`task ${report.task} (${identity})`, ""];
  for (const c of report.checks) lines.push(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
  const difficulties = [...new Set(Object.values(report.counts).flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  const splits = Object.keys(report.counts);
  lines.push("", formatTable(["difficulty", ...splits], difficulties.map((d) => [String(d), ...splits.map((s) => String(report.counts[s]!.get(d) ?? 0))])), "");
  for (const [split, examples] of Object.entries(report.examples)) {
    for (const e of examples) lines.push(`${split.padEnd(10)} d=${e.difficulty}  ${JSON.stringify(e.prompt)}${"answer" in e ? ` → ${JSON.stringify((e as { answer: string }).answer)}` : ""}`);
  }
  lines.push("", report.ok ? "all checks passed" : `${report.checks.filter((c) => !c.ok).length} check(s) failed`);
  return lines.join("\n") + "\n";
}

/** `autodidact task …`; returns the exit code. */
export async function taskCommand(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "help") {
    out(`${USAGE}\n\n${checkOptions.help({ usage: "autodidact task check <name|module> [options]", description: "" })}\n`);
    return sub === undefined ? 2 : 0;
  }
  const parsed = checkOptions.parse(rest, process.env);
  if (parsed.help) {
    out(`${USAGE}\n\n${checkOptions.help({ usage: "autodidact task check <name|module> [options]", description: "" })}\n`);
    return 0;
  }
  const { taskModule, taskModuleDir, draws, json } = parsed.values;
  if (sub === "list") {
    await loadTaskModules({ modules: taskModule, dirs: taskModuleDir });
    for (const name of listTaskPacks()) out(`${name}\t${getTaskPack(name).description}\n`);
    return 0;
  }
  if (sub !== "check") throw new AutodidactError(`unknown task command "${sub}" (check, list)`, Code.InvalidArgument);
  const target = parsed.positionals[0];
  if (target === undefined || parsed.positionals.length > 1) throw new AutodidactError("task check takes one task name or module", Code.InvalidArgument);
  const pack = await packOf(target, taskModule, taskModuleDir);
  const report = checkTaskPack(pack, { draws });
  const id = taskIdentity(pack.name);
  if (json) {
    out(JSON.stringify({ ...report, identity: id, counts: Object.fromEntries(Object.entries(report.counts).map(([s, m]) => [s, Object.fromEntries(m)])) }, null, 2) + "\n");
  } else {
    out(formatCheckReport(report, id.module === "" ? `built-in, ${id.version}` : `${id.module} v${id.version}, digest ${id.digest.slice(0, 12)}`));
  }
  return report.ok ? 0 : 1;
}
