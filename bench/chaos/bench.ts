/**
 * The chaos run on demand (`npm run bench:chaos -- [--seed N] [--kills 24] [--nats-restarts 3] [--chaos 180s]
 * [--calm 30s] [--keep]`; with `--cluster [--node-kills 12]` on a 3-node cluster with replicas 3, see cluster.ts): the real mesh under SIGKILLs and nats-server restarts, then every invariant
 * checked; prints the counts and exits 1 when an invariant failed. The peer is a calm phase of the same
 * load without faults, measured first in the same run (decided samples/s calm vs under chaos).
 * Replay a run with its printed seed (the schedule is the same; process timing is not).
 */
import { runChaos, type ChaosReport } from "./chaos.js";
import { runClusterChaos, type ClusterChaosReport } from "./cluster.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function seconds(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (m === null) throw new Error(`not a duration: ${text} (use 90s, 3m or milliseconds)`);
  const v = Number(m[1]);
  return m[2] === "ms" ? v : m[2] === "m" ? v * 60_000 : m[2] === "s" ? v * 1000 : v;
}

function table(r: ChaosReport): string {
  const rows: Array<[string, string]> = [
    ["seed", String(r.seed)],
    ["kills (SIGKILL)", `${r.kills}  (${Object.entries(r.killsByService).map(([k, v]) => `${k} ${v}`).join(", ")})`],
    ["nats-server restarts", String(r.natsRestarts)],
    ["supervisor restarts", String(r.supervisorRestarts)],
    ["failed starts (NATS down)", String(r.startFailures)],
    ["unexpected exits", r.unexpectedExits.length === 0 ? "0" : r.unexpectedExits.join("; ")],
    ["run (rounds done)", `${r.runStatus} (${r.roundsDone})`],
    ["samples proposed", String(r.proposed)],
    ["samples decided", String(r.decided)],
    ["lost", String(r.lost)],
    ["decided twice (stored or published)", String(r.decidedTwice)],
    ["decisions not the ledger's", String(r.decisionsNotInLedger)],
    ["decision publishes seen (unseen samples)", `${r.decisionPublishes} (${r.auditUnseen})`],
    ["re-published copies of a decision (published / stored)", `${r.republishedCopies} / ${r.decisionCopies}`],
    ["accepted / rejected (by timeout)", `${r.accepted} / ${r.rejected} (${r.timeouts})`],
    ["votes per decision", Object.entries(r.votesPerDecision).map(([k, v]) => `${k} votes: ${v}`).join(", ")],
    ["decisions with complete votes", `${r.votesComplete} of ${r.votesComplete + r.votesIncomplete}`],
    ["missing / conflicting verdicts", `${r.missingVerdicts} / ${r.conflictingVerdicts}`],
    ["trainer intake == accepted", `${r.intake} == ${r.accepted} (missing ${r.intakeMissing}, extra ${r.intakeExtra}, dup lines ${r.intakeDuplicateLines})`],
    ["rounds exactly once per lineage", r.roundsOnce ? "yes" : `no: ${r.roundProblems.slice(0, 3).join("; ")}`],
    ["rounds in journal", Object.entries(r.journalRounds).map(([k, v]) => `${k} ${v}`).join(", ") || "0"],
    ["checkpoints registered / counter", `${r.checkpointsRegistered} / ${r.versionsAllocated} (contiguous: ${r.versionsContiguous})`],
    ["checkpoints loadable", `${r.checkpointsLoadable} of ${r.checkpointsRegistered}`],
    ["promoted pointer", `main@${r.promotedVersion} (valid: ${r.promotedValid})`],
    ["checkpoint folders complete (trainer + caches) / broken", `${r.trainerFoldersComplete} + ${r.cacheFoldersComplete} / ${r.trainerFoldersBroken.length}`],
    ["torn JSONL lines", String(r.tornLines)],
    ["temp entries left by kills (never read)", String(r.tempFilesLeft.length)],
    ["poison records", String(r.poisoned)],
    ["decided samples/s calm (peer)", r.calmDecidedPerS.toFixed(2)],
    ["decided samples/s under chaos", `${r.chaosDecidedPerS.toFixed(2)}${r.calmDecidedPerS > 0 ? `  (ratio ${(r.chaosDecidedPerS / r.calmDecidedPerS).toFixed(2)})` : ""}`],
    ["settle time", `${(r.settleMs / 1000).toFixed(1)} s`],
    ["total time", `${(r.totalMs / 1000).toFixed(1)} s`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}

/** The node-kill lines of a cluster run (bench/chaos/cluster.ts). */
function clusterTable(r: ClusterChaosReport): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const lines = [
    `node kills (SIGKILL + restart)  ${r.nodeKills.length}  (leaders of: ${r.leadersKilled.join(", ")})`,
    `recovery after a node loss     median ${s(r.recoveryMedianMs)}, worst ${s(r.recoveryWorstMs)}  (until a KV write and a publish to streams the lost node led succeed)`,
    "",
    "  at       node  leader of           writes back  re-elected  caught up after restart",
    ...r.nodeKills.map(
      (k) =>
        `  ${k.atS.toFixed(1).padStart(6)}s  ${k.node.padEnd(4)}  ${k.target.padEnd(18)}  ${s(k.recoveryMs).padStart(11)}  ${s(k.electionMs).padStart(10)}  ${s(k.catchUpMs).padStart(8)}${k.probesOnVictim ? "" : "  (probes elsewhere)"}`,
    ),
    "",
    `replicas at the end            ${r.finalAssets.map((a) => `${a.stream} ${a.replicas}`).join(", ")}`,
  ];
  return lines.join("\n");
}

const seed = Number(flag("seed") ?? Math.floor(Math.random() * 2 ** 31));
const cluster = process.argv.includes("--cluster");
const common = {
  seed,
  kills: Number(flag("kills") ?? 24),
  chaosMs: seconds(flag("chaos"), cluster ? 300_000 : 180_000),
  calmMs: seconds(flag("calm"), 30_000),
  keepState: process.argv.includes("--keep"),
  log: (line: string) => process.stdout.write(`${line}\n`),
};
const report: ChaosReport = cluster
  ? await runClusterChaos({ ...common, nodeKills: Number(flag("node-kills") ?? 12) })
  : await runChaos({ ...common, natsRestarts: Number(flag("nats-restarts") ?? 3) });
process.stdout.write(`\n${table(report)}\n`);
if (cluster) process.stdout.write(`${clusterTable(report as ClusterChaosReport)}\n`);
process.stdout.write("\ninvariants:\n");
for (const f of report.roundFailures) process.stdout.write(`  round without candidate: ${f}\n`);
for (const i of report.invariants) process.stdout.write(`  ${i.ok ? "ok  " : "FAIL"}  ${i.name}: ${i.detail}\n`);
const failed = report.invariants.filter((i) => !i.ok);
if (failed.length > 0) process.stdout.write(`\n${failed.length} invariant(s) failed; state kept in ${report.stateDir}; replay with --seed ${seed}\n`);
process.exitCode = failed.length > 0 ? 1 : 0;
