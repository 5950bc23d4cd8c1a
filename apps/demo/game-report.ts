// The report of a game demo run: the Elo table per round (candidate and promoted model against the
// fixed opponents), the gate's decisions, self-play throughput, one game of the latest promoted model
// drawn as boards (report.md), the raw rows (report.json) and the Elo curve (figures/elo.png).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { renderPng, type Figure } from "../report/index.js";
import { getGamePack, playMoves, type Tally } from "../../src/domain/games/index.js";
import type { GameEvaluation, ShownGame } from "../../services/monitor/index.js";
import type { GameDemoConfig } from "./game-config.js";
import type { GameRoundRow, GameRunResult } from "./game-run.js";

const pct = (t: Tally | undefined): string => (t === undefined ? "-" : `${((100 * (t.wins + t.draws / 2)) / Math.max(1, t.wins + t.draws + t.losses)).toFixed(0)}%`);
const elo = (g: GameEvaluation | undefined): string => (g === undefined ? "-" : `${Math.round(g.elo) || 0} ± ${g.eloStderr.toFixed(0)}`);

/** The promoted model's evaluation after each round (the base's until a candidate is promoted). */
export function promotedCurve(result: GameRunResult): (GameEvaluation | undefined)[] {
  let current = result.base;
  return result.rows.map((r) => {
    if (r.status === "promoted" && r.candidate) current = r.candidate;
    return current;
  });
}

/** A board as text lines (row 6 on top), "x" the first player, "o" the second, column numbers below. */
export function boardLines(task: string, moves: readonly number[]): string[] {
  const game = getGamePack(task).game;
  const text = game.stateText(playMoves(game, moves));
  const rows = text.split("/").map((r) => [...r].join(" "));
  const cols = rows[0]!.split(" ").length;
  return [...rows, Array.from({ length: cols }, (_, i) => String(i + 1)).join(" ")];
}

/** A game as a strip of boards: every `every` plies and the final position. */
export function gameBoards(task: string, shown: ShownGame, every = 6): string {
  const plies: number[] = [];
  for (let p = every; p < shown.moves.length; p += every) plies.push(p);
  plies.push(shown.moves.length);
  const boards = plies.map((p) => ({ title: `ply ${p}`, lines: boardLines(task, shown.moves.slice(0, p)) }));
  const width = Math.max(...boards.map((b) => Math.max(b.title.length, ...b.lines.map((l) => l.length)))) + 3;
  const out: string[] = [];
  for (let i = 0; i < boards.length; i += 5) {
    const group = boards.slice(i, i + 5);
    out.push(group.map((b) => b.title.padEnd(width)).join("").trimEnd());
    for (let k = 0; k < group[0]!.lines.length; k++) out.push(group.map((b) => b.lines[k]!.padEnd(width)).join("").trimEnd());
    out.push("");
  }
  return out.join("\n");
}

/** The Elo figure: candidate and promoted Elo per round, the fixed opponents as dashed lines. */
export function eloFigure(result: GameRunResult): Figure {
  const promoted = promotedCurve(result);
  const anchors = result.base?.anchorRatings ?? {};
  const rounds = result.rows.map((r) => r.round);
  const x0 = Math.min(...rounds, 1) - 1;
  const x1 = Math.max(...rounds, 1);
  return {
    id: "elo",
    title: "Elo against fixed opponents (random = 0)",
    xLabel: "round",
    yLabel: "Elo",
    series: [
      { name: "candidate", points: result.rows.flatMap((r) => (r.candidate ? [[r.round, r.candidate.elo] as const] : [])) },
      { name: "promoted", points: [[x0, result.base?.elo ?? 0], ...result.rows.flatMap((r, i) => (promoted[i] ? [[r.round, promoted[i]!.elo] as const] : []))] },
      ...Object.entries(anchors).map(([name, e]) => ({ name, dashed: true, points: [[x0, e], [x1, e]] as const })),
    ],
  };
}

/** The round table in markdown. */
export function roundTable(result: GameRunResult): string {
  const promoted = promotedCurve(result);
  const names = Object.keys(result.base?.anchors ?? result.rows.find((r) => r.candidate)?.candidate?.anchors ?? {});
  const head = ["round", "candidate", "arena W-D-L", "gate", "candidate Elo", ...names.map((n) => `vs ${n}`), "promoted", "promoted Elo", "games/s", "positions/s", "round s", "t"];
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  if (result.base) {
    lines.push(`| 0 (base, random weights) | v1 | - | imported | ${elo(result.base)} | ${names.map((n) => pct(result.base!.anchors[n])).join(" | ")} | v1 | ${elo(result.base)} | - | - | - | - |`);
  }
  result.rows.forEach((r: GameRoundRow, i) => {
    const c = r.candidate;
    const a = c?.arena?.tally;
    lines.push(
      `| ${r.round} | v${r.candidateVersion} | ${a ? `${a.wins}-${a.draws}-${a.losses}` : "-"} | ${r.status}${c?.alarms.length ? " (alarm)" : ""} | ${elo(c)} | ${names.map((n) => pct(c?.anchors[n])).join(" | ")} | v${r.promotedVersion} | ${elo(promoted[i])} | ${r.gamesPerSecond.toFixed(1)} | ${r.positionsPerSecond.toFixed(0)} | ${r.seconds.toFixed(0)} | ${r.elapsed.toFixed(0)} |`,
    );
  });
  return lines.join("\n");
}

/** Writes report.md, report.json and figures/elo.png into `outDir`; returns the markdown. */
export async function writeGameReport(outDir: string, config: GameDemoConfig, result: GameRunResult): Promise<string> {
  await mkdir(join(outDir, "figures"), { recursive: true });
  const figure = eloFigure(result);
  await writeFile(join(outDir, "figures", "elo.png"), renderPng(figure));
  await writeFile(join(outDir, "report.json"), JSON.stringify({ config, result }, null, 2));
  const promoted = promotedCurve(result);
  const last = promoted[promoted.length - 1] ?? result.base;
  const rejected = result.rows.filter((r) => r.status === "rejected").length;
  const sp = result.rows.filter((r) => r.positionsPerSecond > 0);
  const meanPps = sp.length > 0 ? sp.reduce((a, r) => a + r.positionsPerSecond, 0) / sp.length : 0;
  const md = [
    `# ${config.task}: self-play through the mesh (${config.arenaRule === "none" ? "--no-gate" : `arena gate: ${config.arenaRule}`})`,
    "",
    `Run ${result.runId}: ${result.status}${result.message ? ` (${result.message})` : ""}; ${result.rows.length} rounds in ${(result.wallSeconds / 60).toFixed(1)} min; ` +
      `${result.rows.length - rejected} candidates promoted, ${rejected} rejected; self-play at a mean ${meanPps.toFixed(0)} positions/s.`,
    "",
    `Settings: ${config.gamesPerRound} games a round at ${config.simulations} simulations, ${config.steps} steps of ${config.batchSize} on a window of ${config.windowGames} games, ` +
      `arena ${config.arenaGames} games at ${config.arenaSimulations} simulations (${config.arenaRule}${config.arenaRule === "threshold" ? ` ${config.arenaThreshold}` : ""}), ` +
      `Elo from ${config.eloGames} games against each fixed opponent at ${config.eloSimulations} simulations.`,
    "",
    `Fixed opponents (calibrated, random = 0): ${Object.entries(result.base?.anchorRatings ?? {}).map(([n, e]) => `${n} ${e.toFixed(0)}`).join(", ")}.`,
    "",
    roundTable(result),
    "",
    "![Elo per round](figures/elo.png)",
    "",
    ...(last?.shown
      ? [`## One game of the latest promoted model (${last.shown.modelFirst ? "x" : "o"}) against ${last.shown.opponent}: ${last.shown.outcome === 0 ? "draw" : (last.shown.outcome === 1) === last.shown.modelFirst ? "won" : "lost"}`, "", "```", gameBoards(config.task, last.shown), "```", ""]
      : []),
  ].join("\n");
  await writeFile(join(outDir, "report.md"), md);
  return md;
}
