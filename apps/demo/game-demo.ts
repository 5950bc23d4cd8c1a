// `autodidact demo --task <game>`: self-play from random weights on the local mesh, driven by the
// conductor, with a live round table and a report (Elo per round, gate decisions, throughput, one
// game drawn as boards). `--quick` is the CI-sized variant, `--no-gate` the ablation that promotes
// every candidate.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defineOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { getGamePack, isGameTask, listGamePacks } from "../../src/domain/games/index.js";
import { defaultGameConfig, quickGameConfig, type GameDemoConfig } from "./game-config.js";
import { runGameDemo, type GameRoundRow } from "./game-run.js";
import { promotedCurve, writeGameReport } from "./game-report.js";

/** Flags of `autodidact demo --task <game>`. */
export const gameDemoOptions = defineOptions({
  task: { type: "string", help: `the game (${listGamePacks().join(", ")})`, placeholder: "<game>" },
  quick: { type: "bool", help: "a tiny run of the same path (two rounds of a few short games): about a minute" },
  gate: { type: "bool", help: "the arena gate decides promotions (--no-gate: every candidate promoted, the ablation)", default: true },
  sprt: { type: "bool", help: "gate with the sequential probability ratio test instead of the 55 % threshold" },
  rounds: { type: "int", help: "rounds at most (default 60; the time budget usually ends the run first)", min: 1, max: 10_000 },
  minutes: { type: "float", help: "time budget: no round starts that would end after it (default 17; 0 = none)", min: 0 },
  games: { type: "int", help: "self-play games per round (default 200)", min: 1, max: 4096 },
  simulations: { type: "int", help: "search simulations per self-play move (default 64)", min: 1, max: 100_000 },
  seed: { type: "int", help: "seed of the base model and the run", min: 1 },
  out: { type: "string", help: "where report.md, report.json and figures/elo.png go (default .autodidact/demo-<game>[-nogate])", placeholder: "<dir>" },
  natsUrl: { type: "string", help: "use this NATS (JetStream on) instead of starting nats-server", env: "NATS_URL" },
});

/** Whether `demo` arguments name a game task (`--task connect4` / `--task=connect4`): the hook of the demo command. */
export function namesGameTask(argv: readonly string[]): boolean {
  const i = argv.findIndex((a) => a === "--task" || a.startsWith("--task="));
  if (i < 0) return false;
  const value = argv[i]!.includes("=") ? argv[i]!.slice("--task=".length) : argv[i + 1];
  return value !== undefined && isGameTask(value);
}

/** The run's configuration from the flags. */
export function gameConfigOf(v: ReturnType<typeof gameDemoOptions.parse>["values"]): GameDemoConfig {
  if (v.task === undefined || !isGameTask(v.task)) throw new AutodidactError(`--task must name a game (${listGamePacks().join(", ")})`, Code.InvalidArgument);
  getGamePack(v.task);
  const base = v.quick === true ? quickGameConfig(v.task) : defaultGameConfig(v.task);
  return {
    ...base,
    arenaRule: !v.gate ? "none" : v.sprt === true ? "sprt" : base.arenaRule,
    ...(v.rounds !== undefined ? { rounds: v.rounds } : {}),
    ...(v.minutes !== undefined ? { minutes: v.minutes } : {}),
    ...(v.games !== undefined ? { gamesPerRound: v.games } : {}),
    ...(v.simulations !== undefined ? { simulations: v.simulations } : {}),
    ...(v.seed !== undefined ? { seed: v.seed } : {}),
  };
}

const fmt = (r: GameRoundRow, promotedElo: number | undefined): string => {
  const c = r.candidate;
  const a = c?.arena?.tally;
  const vs = c ? Object.entries(c.anchors).map(([n, t]) => `${n} ${((100 * (t.wins + t.draws / 2)) / Math.max(1, t.wins + t.draws + t.losses)).toFixed(0)}%`).join(", ") : "";
  return (
    `round ${String(r.round).padStart(3)}  v${r.candidateVersion} ${r.status.padEnd(9)} arena ${a ? `${a.wins}-${a.draws}-${a.losses}` : "-"}  ` +
    `Elo ${c ? c.elo.toFixed(0) : "-"} (promoted ${promotedElo?.toFixed(0) ?? "-"})  ${vs}  ${r.positionsPerSecond.toFixed(0)} pos/s  ${r.seconds.toFixed(0)}s  t=${r.elapsed.toFixed(0)}s\n`
  );
};

/** `autodidact demo --task <game> [--quick] [--no-gate] [--sprt] …`; returns the exit code. */
export async function gameDemoCommand(argv: readonly string[], io: { write?: (s: string) => void; signal?: AbortSignal } = {}): Promise<number> {
  const write = io.write ?? ((s: string) => void process.stdout.write(s));
  const parsed = gameDemoOptions.parse(argv, process.env);
  if (parsed.help) {
    write(gameDemoOptions.help({ usage: "autodidact demo --task <game> [options]" }) + "\n");
    return 0;
  }
  process.env["AUTODIDACT_LOG_LEVEL"] ??= "warn";
  const config = gameConfigOf(parsed.values);
  const outDir = resolve(parsed.values.out ?? join(".autodidact", `demo-${config.task}${config.arenaRule === "none" ? "-nogate" : ""}`));
  const stateDir = await mkdtemp(join(tmpdir(), `autodidact-${config.task}-`));
  let promotedElo: number | undefined;
  let base: number | undefined;
  try {
    const result = await runGameDemo({
      config,
      stateDir,
      ...(parsed.values.natsUrl !== undefined ? { natsUrl: parsed.values.natsUrl } : {}),
      onLine: (l) => write(`${l}\n`),
      onRound: (r) => {
        if (r.status === "promoted" && r.candidate) promotedElo = r.candidate.elo;
        write(fmt(r, promotedElo ?? base));
      },
      ...(io.signal ? { signal: io.signal } : {}),
    });
    base = result.base?.elo;
    await writeGameReport(outDir, config, result);
    const last = promotedCurve(result).at(-1) ?? result.base;
    write(`\n${result.rows.length} rounds in ${(result.wallSeconds / 60).toFixed(1)} min; promoted model Elo ${last?.elo.toFixed(0) ?? "-"}` +
      ` (${Object.entries(last?.anchors ?? {}).map(([n, t]) => `${n} ${((100 * (t.wins + t.draws / 2)) / Math.max(1, t.wins + t.draws + t.losses)).toFixed(0)}%`).join(", ")})\n`);
    write(`report: ${join(outDir, "report.md")}\n`);
    return 0;
  } finally {
    await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
