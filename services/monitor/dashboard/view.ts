import type { CollapseAlarm, EvaluationReport } from "../evaluation/index.js";
import type { CheckpointRecord } from "../../../src/domain/registry/index.js";
import { escapeHtml, lineChart, type Series } from "../../../src/platform/charts/index.js";
import { renderGameSection } from "./game-view.js";

/** An evaluation as the dashboard reads it (the monitor's stored evaluation). */
export interface DashboardEvaluation extends EvaluationReport {
  readonly version: number;
  /** The results: test-split accuracy per difficulty and frontier (absent in records of an older monitor). */
  readonly test?: Pick<EvaluationReport, "perDifficulty" | "accuracy" | "frontier">;
  readonly labelAccuracy: number;
  readonly labelAccuracyProposed: number;
  readonly evaluatedAt: string;
  readonly gate?: { readonly passed: boolean; readonly reasons: readonly string[] };
}

/** One checkpoint row of the dashboard: its record, what formed it, and its evaluation if any. */
export interface DashboardCheckpoint {
  readonly record: CheckpointRecord;
  readonly evaluation?: DashboardEvaluation;
  readonly acceptanceRate?: number;
  readonly criticAgreement?: number;
  /** Verifier-judged label accuracy of the round's accepted / proposed samples (from the decisions), when known. */
  readonly labelAccuracyAccepted?: number;
  readonly labelAccuracyProposed?: number;
  readonly sampleIdsDigest: string;
  readonly sampleCount: number;
}

/** Everything the page shows, as served on `/api/state`. */
export interface DashboardState {
  readonly lineage: string;
  readonly promotedVersion: number;
  readonly checkpoints: readonly DashboardCheckpoint[];
  /** Root-first chain of the promoted version. */
  readonly lineageChain: readonly number[];
  readonly generatedAt: string;
}

const pointsOf = (cps: readonly DashboardCheckpoint[], f: (c: DashboardCheckpoint) => number | undefined): [number, number][] =>
  cps.flatMap((c) => {
    const y = f(c);
    return y === undefined || !Number.isFinite(y) || y < 0 ? [] : [[c.record.round, y] as [number, number]];
  });

/** The plots of the state: id → SVG. One point per evaluated checkpoint, x = its round. */
export function renderPlots(state: DashboardState): Record<string, string> {
  const cps = [...state.checkpoints].filter((c) => c.evaluation !== undefined).sort((a, b) => a.record.round - b.record.round || a.record.version - b.record.version);
  // Results come from the test split (the top-level numbers are the gate's validation evaluation).
  const results = (c: DashboardCheckpoint): Pick<EvaluationReport, "perDifficulty" | "accuracy" | "frontier"> => c.evaluation!.test ?? c.evaluation!;
  const difficulties = [...new Set(cps.flatMap((c) => results(c).perDifficulty.map((d) => d.difficulty)))].sort((a, b) => a - b);
  const accSeries: Series[] = difficulties.map((d) => ({ name: `len ${d}`, points: pointsOf(cps, (c) => results(c).perDifficulty.find((x) => x.difficulty === d)?.accuracy) }));
  accSeries.push({ name: "overall", points: pointsOf(cps, (c) => results(c).accuracy), color: "#111827", dashed: true });
  const trainLoss = (c: DashboardCheckpoint): number | undefined => {
    const curve = c.record.manifest.lossCurve ?? c.record.manifest.loss_curve;
    if (!Array.isArray(curve) || curve.length === 0) return undefined;
    const last = curve.at(-1) as { loss?: unknown } | number;
    return typeof last === "number" ? last : typeof last?.loss === "number" ? last.loss : undefined;
  };
  const alarms = (c: DashboardCheckpoint, sev: CollapseAlarm["severity"]): number => c.evaluation!.alarms.filter((a) => a.severity === sev).length;
  return {
    accuracy: lineChart({ id: "accuracy", title: "Test-split accuracy by difficulty", xLabel: "round", series: accSeries, yMin: 0, yMax: 1 }),
    frontier: lineChart({ id: "frontier", title: "Frontier (every length 1..L at >= 95 % on the test split)", xLabel: "round", series: [{ name: "frontier", points: pointsOf(cps, (c) => results(c).frontier) }], yMin: 0 }),
    loss: lineChart({
      id: "loss",
      title: "Loss (nats/token)",
      xLabel: "round",
      series: [
        { name: "held-out", points: pointsOf(cps, (c) => c.evaluation!.loss) },
        { name: "training (last step)", points: pointsOf(cps, trainLoss), dashed: true },
      ],
      yMin: 0,
    }),
    acceptance: lineChart({ id: "acceptance", title: "Acceptance rate of proposed samples", xLabel: "round", series: [{ name: "accepted / proposed", points: pointsOf(cps, (c) => c.acceptanceRate) }], yMin: 0, yMax: 1 }),
    labels: lineChart({
      id: "labels",
      title: "Label accuracy (verifier)",
      xLabel: "round",
      series: [
        { name: "accepted", points: pointsOf(cps, (c) => (c.evaluation!.labelAccuracy >= 0 ? c.evaluation!.labelAccuracy : c.labelAccuracyAccepted)) },
        { name: "proposed", points: pointsOf(cps, (c) => (c.evaluation!.labelAccuracyProposed >= 0 ? c.evaluation!.labelAccuracyProposed : c.labelAccuracyProposed)), dashed: true },
      ],
      yMin: 0,
      yMax: 1,
    }),
    agreement: lineChart({ id: "agreement", title: "Critic agreement", xLabel: "round", series: [{ name: "agreement", points: pointsOf(cps, (c) => c.criticAgreement) }], yMin: 0, yMax: 1 }),
    diversity: lineChart({
      id: "diversity",
      title: "Diversity and tails",
      xLabel: "round",
      series: [
        { name: "distinct-2", points: pointsOf(cps, (c) => c.evaluation!.distinctN[2]) },
        { name: "tail coverage", points: pointsOf(cps, (c) => c.evaluation!.tailCoverage) },
        { name: "token entropy/ln10", points: pointsOf(cps, (c) => c.evaluation!.tokenEntropy / Math.log(10)) },
        { name: "drift KL", points: pointsOf(cps, (c) => c.evaluation!.driftKl), dashed: true },
      ],
      yMin: 0,
    }),
    alarms: lineChart({
      id: "alarms",
      title: "Collapse alarms",
      xLabel: "round",
      series: [
        { name: "critical", points: pointsOf(cps, (c) => alarms(c, "critical")), color: "#dc2626" },
        { name: "warning", points: pointsOf(cps, (c) => alarms(c, "warning")), color: "#ca8a04" },
      ],
      yMin: 0,
    }),
  };
}

const STATUS_CLASS: Record<string, string> = { promoted: "ok", rejected: "bad", rolled_back: "warn", candidate: "muted" };

/** The live part of the page (plots, history, lineage), re-fetched by the page while a run goes on. */
export function renderFragment(state: DashboardState): string {
  const plots = renderPlots(state);
  const rows = [...state.checkpoints]
    .sort((a, b) => b.record.version - a.record.version)
    .map((c) => {
      const r = c.record;
      const e = c.evaluation;
      const alarms = e ? e.alarms.map((a) => `${a.kind} (${a.stage})`).join(", ") : "";
      return `<tr data-version="${r.version}" data-status="${r.status}"><td>v${r.version}${r.version === state.promotedVersion ? " ★" : ""}</td><td>${r.round}</td><td>${r.parentVersion ? `v${r.parentVersion}` : "—"}</td><td class="${STATUS_CLASS[r.status] ?? ""}">${escapeHtml(r.status)}</td><td>${e ? e.accuracy.toFixed(3) : ""}</td><td>${e ? e.loss.toFixed(3) : ""}</td><td>${escapeHtml(alarms)}</td><td class="reason">${escapeHtml(r.statusReason)}</td></tr>`;
    })
    .join("");
  const byVersion = new Map(state.checkpoints.map((c) => [c.record.version, c]));
  const chain = state.lineageChain
    .map((v) => {
      const c = byVersion.get(v);
      if (!c) return "";
      return `<li data-version="${v}">v${v} · round ${c.record.round} · ${c.sampleCount} samples · ids <code>${escapeHtml(c.sampleIdsDigest.slice(0, 16) || "—")}</code> · ${escapeHtml(c.record.status)}</li>`;
    })
    .join("");
  return [
    `<p class="meta">lineage <b>${escapeHtml(state.lineage)}</b> · promoted <b>${state.promotedVersion ? `v${state.promotedVersion}` : "none"}</b> · ${state.checkpoints.length} checkpoints · updated ${escapeHtml(state.generatedAt)}</p>`,
    `<section class="plots">${Object.values(plots).join("")}</section>`,
    `<h2>Checkpoints</h2><table id="history"><thead><tr><th>version</th><th>round</th><th>parent</th><th>status</th><th>accuracy</th><th>loss</th><th>alarms</th><th>reason</th></tr></thead><tbody>${rows}</tbody></table>`,
    `<h2>Lineage of the promoted checkpoint</h2><ol id="lineage">${chain || "<li>none</li>"}</ol>`,
    renderGameSection(state),
  ].join("\n");
}

/** The whole page: styles, the first fragment, and a poller that swaps the fragment every `pollMs`. */
export function renderPage(state: DashboardState, pollMs = 2000): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Autodidact monitor · ${escapeHtml(state.lineage)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:20px;color:#111827;background:#f9fafb}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:20px 0 8px}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{background:#fff;border:1px solid #e5e7eb;border-radius:6px}
.plot .title{font-weight:600;font-size:12px} .plot .tick,.plot .legend,.plot .axis{font-size:10px;fill:#4b5563}
.plot .grid{stroke:#f3f4f6} .plot .frame{fill:none;stroke:#e5e7eb} .plot .empty{fill:#9ca3af}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;font-size:12px}
.ok{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}.warn{color:#a16207;font-weight:600}.muted{color:#6b7280}
.reason{max-width:480px} .meta{color:#4b5563}
</style></head><body><h1>Autodidact monitor</h1><div id="live">${renderFragment(state)}</div>
<script>
(function(){var busy=false;setInterval(function(){if(busy)return;busy=true;fetch('fragment',{cache:'no-store'}).then(function(r){return r.ok?r.text():null}).then(function(t){if(t!==null)document.getElementById('live').innerHTML=t}).catch(function(){}).finally(function(){busy=false})},${pollMs});})();
</script></body></html>`;
}
