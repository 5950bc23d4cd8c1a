// The dashboard's part for game lineages: Elo against the fixed opponents per round, the arena
// gate's W/D/L per candidate, and one game of the promoted model drawn as boards.
import { escapeHtml, lineChart, type Series } from "../../../src/platform/charts/index.js";
import { getGamePack, isGameTask, playMoves } from "../../../src/domain/games/index.js";
import type { GameEvaluation } from "../arena/game-evaluation.js";
import type { DashboardCheckpoint, DashboardState } from "./view.js";

const gameOf = (c: DashboardCheckpoint): GameEvaluation | undefined => (c.evaluation as { game?: GameEvaluation } | undefined)?.game;

/** The final position of a shown game as text rows (top row first) with column numbers. */
function board(task: string, moves: readonly number[]): string {
  if (!isGameTask(task)) return "";
  const game = getGamePack(task).game;
  const rows = game.stateText(playMoves(game, moves)).split("/").map((r) => [...r].join(" "));
  return [...rows, Array.from({ length: rows[0]!.split(" ").length }, (_, i) => i + 1).join(" ")].join("\n");
}

/** The game section (empty when no checkpoint of the lineage is a game's). */
export function renderGameSection(state: DashboardState): string {
  const cps = state.checkpoints.filter((c) => gameOf(c) !== undefined).sort((a, b) => a.record.round - b.record.round || a.record.version - b.record.version);
  if (cps.length === 0) return "";
  const anchors = gameOf(cps[0]!)!.anchorRatings;
  const rounds = cps.map((c) => c.record.round);
  const [x0, x1] = [Math.min(...rounds), Math.max(...rounds, Math.min(...rounds) + 1)];
  const series: Series[] = [
    { name: "checkpoint Elo", points: cps.map((c) => [c.record.round, gameOf(c)!.elo] as [number, number]), color: "#111827" },
    { name: "promoted", points: cps.filter((c) => c.record.status === "promoted" || c.record.version === state.promotedVersion).map((c) => [c.record.round, gameOf(c)!.elo] as [number, number]), color: "#16a34a" },
    ...Object.entries(anchors).map(([name, e]) => ({ name, points: [[x0, e], [x1, e]] as [number, number][], dashed: true })),
  ];
  const rows = [...cps]
    .reverse()
    .map((c) => {
      const g = gameOf(c)!;
      const t = g.arena?.tally;
      const vs = Object.entries(g.anchors).map(([n, a]) => `${n} ${((100 * (a.wins + a.draws / 2)) / Math.max(1, a.wins + a.draws + a.losses)).toFixed(0)}%`).join(", ");
      return `<tr data-version="${c.record.version}"><td>v${c.record.version}</td><td>${c.record.round}</td><td>${t ? `${t.wins}-${t.draws}-${t.losses}` : "—"}</td><td>${escapeHtml(g.arena?.decision.verdict ?? "first")}</td><td>${g.elo.toFixed(0)} ± ${g.eloStderr.toFixed(0)}</td><td>${escapeHtml(vs)}</td><td>${escapeHtml(g.alarms.map((a) => a.message).join("; "))}</td></tr>`;
    })
    .join("");
  const promoted = cps.find((c) => c.record.version === state.promotedVersion);
  const shown = promoted ? gameOf(promoted)?.shown : undefined;
  return [
    `<h2>Self-play: strength against fixed opponents</h2>`,
    `<section class="plots">${lineChart({ id: "elo", title: "Elo (random play = 0)", xLabel: "round", series })}</section>`,
    `<table id="arena"><thead><tr><th>version</th><th>round</th><th>arena W-D-L</th><th>gate</th><th>Elo</th><th>vs fixed opponents</th><th>alarms</th></tr></thead><tbody>${rows}</tbody></table>`,
    shown && promoted
      ? `<h3>v${promoted.record.version} against ${escapeHtml(shown.opponent)} (${shown.modelFirst ? "x" : "o"}), final position</h3><pre id="board">${escapeHtml(board(gameOf(promoted)!.task, shown.moves))}</pre>`
      : "",
  ].join("\n");
}
