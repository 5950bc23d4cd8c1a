// svg.ts directly: the chart code alone, without the dashboard server and its registry/telemetry imports.
import { escapeHtml, lineChart } from "../../src/platform/charts/index.js";
import { figureColors } from "./colors.js";
import { generatorLineageOf } from "./figures.js";
import type { DemoReport, DemoRound, DemoRun, Figure, LineageRound } from "./types.js";

type Accuracy = DemoRun["base"]["accuracyByLength"];

const num = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(digits));

function accuracyCell(acc: Accuracy, threshold: number): string {
  if (acc.length === 0) return `<span class="muted">–</span>`;
  return [...acc]
    .sort((a, b) => a.length - b.length)
    .map((a) => `<span class="acc ${a.accuracy >= threshold ? "ok" : "low"}" data-length="${a.length}" data-accuracy="${a.accuracy}">${a.length}:&nbsp;${a.accuracy.toFixed(2)}</span>`)
    .join(" ");
}

const statusClass = (s: LineageRound["status"]): string => (s === "promoted" ? "ok" : s === "no_candidate" ? "muted" : "bad");

function lineagesCell(r: DemoRound): string {
  if (r.lineages.length === 0) return `<span class="muted">–</span>`;
  return r.lineages
    .map((l) => {
      const versions = l.candidateVersion > 0 ? ` v${l.candidateVersion}` : "";
      const reasons = l.reasons.length ? `<div class="reason">${l.reasons.map(escapeHtml).join("<br>")}</div>` : "";
      return `<div class="lineage" data-lineage="${escapeHtml(l.lineage)}" data-status="${l.status}">${escapeHtml(l.lineage)}${versions}: <span class="${statusClass(l.status)}">${l.status.replace("_", " ")}</span> (frontier ${l.frontier}, promoted v${l.promotedVersion})${reasons}</div>`;
    })
    .join("");
}

/** The round's seconds by phase, small under the total (where a slow run spends its time). */
function phasesCell(r: DemoRound): string {
  const p = r.phaseSeconds;
  if (p === undefined) return "";
  const parts = (["serve", "propose", "judge", "train", "gate"] as const).map((k) => `${k} ${p[k].toFixed(0)}`);
  return `<div class="muted phases">${parts.join(" · ")}</div>`;
}

function runTable(report: DemoReport, run: DemoRun): string {
  const t = report.frontierThreshold;
  const head =
    "<tr><th>round</th><th>length labelled</th><th>proposed</th><th>accepted</th><th>pool</th><th>label acc. accepted</th><th>label acc. proposed</th><th>accuracy per length</th><th>frontier</th><th>generator</th><th>lineages</th><th>seconds</th></tr>";
  const base = `<tr class="base" data-round="0"><td>base</td><td colspan="6" class="muted">the base models, before any self-improvement</td><td>${accuracyCell(run.base.accuracyByLength, t)}</td><td class="frontier">${run.base.frontier}</td><td colspan="3"></td></tr>`;
  const rows = run.rounds.map(
    (r) =>
      `<tr data-round="${r.round}"><td>${r.round}</td><td>${r.labelLength}</td><td class="proposed">${r.proposed}</td><td class="accepted">${r.accepted}</td><td>${r.poolSize}</td><td class="acc-accepted">${num(r.acceptedLabelAccuracy)}</td><td class="acc-proposed">${num(r.proposedLabelAccuracy)}</td><td>${accuracyCell(r.accuracyByLength, t)}</td><td class="frontier">${r.frontier}</td><td class="status ${statusClass(r.status)}">${r.status.replace("_", " ")}</td><td>${lineagesCell(r)}</td><td class="seconds">${num(r.seconds, 1)}${phasesCell(r)}</td></tr>`,
  );
  return `<table class="rounds" data-run="${escapeHtml(run.name)}"><thead>${head}</thead><tbody>${base}${rows.join("")}</tbody></table>`;
}

function summaryTable(report: DemoReport): string {
  const rows = report.runs.map((run) => {
    const last = run.rounds[run.rounds.length - 1];
    const final = last?.frontier ?? run.base.frontier;
    const delta = final - run.base.frontier;
    const promoted = run.rounds.filter((r) => r.status === "promoted").length;
    return `<tr data-run="${escapeHtml(run.name)}"><td><b>${escapeHtml(run.name)}</b></td><td>${escapeHtml(run.description)}</td><td>${run.consensus ? "on" : "off"}</td><td>${run.data}</td><td class="labels">${escapeHtml(run.labels ?? "–")}${run.seed !== undefined ? ` <span class="muted">(seed ${run.seed})</span>` : ""}</td><td>${run.rounds.length}</td><td class="frontier-change">${run.base.frontier} &rarr; ${final} <span class="${delta > 0 ? "ok" : delta < 0 ? "bad" : "muted"}">(${delta >= 0 ? "+" : ""}${delta})</span></td><td>${promoted}/${run.rounds.length}</td><td>${accuracyCell(last?.accuracyByLength ?? run.base.accuracyByLength, report.frontierThreshold)}</td><td>${num(run.seconds, 1)}</td></tr>`;
  });
  return `<table id="summary"><thead><tr><th>run</th><th>what differs</th><th>consensus</th><th>data</th><th>labels regime</th><th>rounds</th><th>test frontier base &rarr; final</th><th>promoted</th><th>final accuracy per length</th><th>seconds</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** Flattens nested objects into dotted keys (arrays stay whole), so each setting gets its own row. */
function flatten(value: unknown, prefix: string, out: [string, unknown][]): [string, unknown][] {
  if (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, value]);
  return out;
}

function configTable(config: DemoReport["config"]): string {
  const items = flatten(config, "", []).map(([k, v]) => `<div class="kv" data-key="${escapeHtml(k)}"><span class="k">${escapeHtml(k)}</span> <code>${escapeHtml(typeof v === "string" ? v : JSON.stringify(v) ?? String(v))}</code></div>`);
  return `<div id="config">${items.join("") || `<span class="muted">none recorded</span>`}</div>`;
}

/** The SVG width that leaves the legend (which lineChart lays out in one row) room to fit. */
function svgWidth(figure: Figure): number {
  const legend = figure.series.reduce((w, s) => w + 20 + s.name.length * 6, 0);
  return Math.max(560, 48 + legend + 12);
}

function figureBlock(figure: Figure): string {
  const colors = figureColors(figure);
  const svg = lineChart({
    id: figure.id,
    title: figure.title,
    xLabel: figure.xLabel,
    yMin: figure.yMin,
    yMax: figure.yMax,
    width: svgWidth(figure),
    height: 300,
    // Solid series first so a dashed one drawn over an identical solid one leaves both visible.
    series: figure.series
      .map((s, i) => ({ name: s.name, points: s.points, dashed: s.dashed, color: colors[i] }))
      .sort((a, b) => Number(a.dashed ?? false) - Number(b.dashed ?? false)),
  });
  const png = `figures/${encodeURIComponent(figure.id)}.png`;
  return `<figure class="figure" id="fig-${escapeHtml(figure.id)}">${svg}<figcaption>y: ${escapeHtml(figure.yLabel)} · x: ${escapeHtml(figure.xLabel)} · <a href="${escapeHtml(png)}">${escapeHtml(`${figure.id}.png`)}</a></figcaption></figure>`;
}

/**
 * The report as one self-contained HTML page (inline CSS and SVG, no scripts, no external
 * assets): configuration, a side-by-side summary of the runs, every figure with a link to its PNG,
 * a table of rounds per run and the dashboard address.
 */
export function renderReportHtml(report: DemoReport, figures: readonly Figure[]): string {
  const dashboard = report.dashboardUrl
    ? `<p id="dashboard">Dashboard (live while the mesh ran): <a href="${escapeHtml(report.dashboardUrl)}">${escapeHtml(report.dashboardUrl)}</a></p>`
    : `<p id="dashboard" class="muted">No dashboard address was recorded.</p>`;
  const runs = report.runs.map((run) => {
    const lineage = generatorLineageOf(run);
    return `<section class="run" data-run="${escapeHtml(run.name)}"><h3>${escapeHtml(run.name)}</h3><p class="meta">${escapeHtml(run.description)} · consensus ${run.consensus ? "on" : "off"} · data ${run.data}${lineage ? ` · generator lineage <code>${escapeHtml(lineage)}</code>` : ""} · ${num(run.seconds, 1)} s · state in <code>${escapeHtml(run.stateDir)}</code></p>${runTable(report, run)}</section>`;
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Autodidact demo report · ${escapeHtml(report.task)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#111827;background:#f9fafb;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:15px;margin:18px 0 4px}
.meta{color:#4b5563;margin:4px 0 8px}
.figures{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:6px}
figcaption{font-size:12px;color:#4b5563;padding:2px 4px}
.plot{max-width:100%;height:auto} .plot .title{font-weight:600;font-size:12px} .plot .tick,.plot .legend,.plot .axis{font-size:10px;fill:#4b5563}
.plot .grid{stroke:#f3f4f6} .plot .frame{fill:none;stroke:#e5e7eb} .plot .empty{fill:#9ca3af}
table{border-collapse:collapse;background:#fff;margin:4px 0} td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;font-size:12px;vertical-align:top}
th{background:#f3f4f6} tr.base{background:#f9fafb}
.acc{white-space:nowrap;font-variant-numeric:tabular-nums} .acc.ok{color:#15803d} .acc.low{color:#6b7280}
.ok{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}.muted{color:#6b7280}
.lineage{white-space:nowrap} .reason{color:#6b7280;white-space:normal;max-width:420px;font-size:11px}
code{font-size:12px;overflow-wrap:anywhere}
#config{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:2px 16px;background:#fff;border:1px solid #e5e7eb;padding:8px;font-size:12px} #config .k{color:#4b5563}
</style></head><body>
<h1>Autodidact demo report</h1>
<p class="meta">task <b>${escapeHtml(report.task)}</b> · created ${escapeHtml(report.createdAt)} · ${report.runs.length} run${report.runs.length === 1 ? "" : "s"} · frontier = longest length L such that every length from ${report.frontierFrom} to L has exact-match accuracy &ge; ${report.frontierThreshold}</p>
${dashboard}
<h2>Configuration</h2>
${configTable(report.config)}
<h2>Runs side by side</h2>
${summaryTable(report)}
<h2>Figures</h2>
<section class="figures">${figures.map(figureBlock).join("\n")}</section>
<h2>Rounds</h2>
${runs.join("\n")}
<p class="meta">Rendered by apps/report from the DemoReport in report.json; re-render with <code>node --import tsx scripts/render-report.ts report.json &lt;outDir&gt;</code>.</p>
</body></html>
`;
}
