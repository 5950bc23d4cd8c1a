import type { RoundReport } from "./self-improve.js";

const pct = (x: number | null): string => (x === null ? "-" : `${(100 * x).toFixed(1)}%`);

/** One line per round (the per-round table of the demo and of the experiment script). */
export function formatRound(r: RoundReport): string {
  const acc = (r.accuracy[0] ?? []).map((a) => `${a.length}:${Math.round(100 * a.accuracy)}`).join(" ");
  return [
    `round ${r.round}`,
    `label len ${r.labelLength ?? "-"}`,
    `proposed ${r.proposed}`,
    `accepted ${r.accepted}`,
    `label acc accepted ${pct(r.acceptedAccuracy)} / proposed ${pct(r.proposedAccuracy)}`,
    `pool ${r.poolSize}`,
    `frontier ${r.frontier} (lineages ${r.frontiers.join(",")})`,
    `train ${r.trainSeconds.toFixed(0)}s wall ${r.wallSeconds.toFixed(0)}s`,
    `acc% ${acc}`,
  ].join(" | ");
}
