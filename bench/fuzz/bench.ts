/**
 * The fuzz run on demand (`npm run bench:fuzz -- [--seed N] [--cases 10000] [--concurrency 8] [--no-big]`):
 * mutated and random protobuf bytes at every gRPC method and every consumed NATS subject of the real
 * mesh; prints cases, crashes, the status-code histogram and the poison bookkeeping, and exits 1 on a
 * finding. The peer: valid requests per second against the same services, measured first in the run.
 */
import { runFuzz } from "./fuzz.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seed = Number(flag("seed") ?? Math.floor(Math.random() * 2 ** 31));
const r = await runFuzz({
  seed,
  cases: Number(flag("cases") ?? 10_000),
  concurrency: Number(flag("concurrency") ?? 8),
  big: !process.argv.includes("--no-big"),
  log: (line) => process.stdout.write(`${line}\n`),
});
const fmt = (m: Record<string, number>): string =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
const rows: Array<[string, string]> = [
  ["seed", String(r.seed)],
  ["cases (gRPC / NATS)", `${r.cases} (${r.rpcCases} / ${r.busCases})`],
  ["targets", `${r.methods} gRPC methods (4 services incl. health + reflection), ${r.subjects} NATS subjects`],
  ["crashes (process exits)", `${r.crashes}${r.crashDetails.length ? `  ${r.crashDetails.join("; ")}` : ""}`],
  ["SERVING afterwards", `${r.serving} of ${r.services}`],
  ["gRPC status histogram", fmt(r.statusHistogram)],
  ["  DEADLINE_EXCEEDED of streams that stay open", fmt(r.deadlineByMethod) || "none"],
  ["  hangs (any other DEADLINE_EXCEEDED/CANCELLED)", fmt(r.hangsByMethod) || "none"],
  ["failures (INTERNAL/UNKNOWN/UNAVAILABLE, hangs)", String(r.failures)],
  ["mutations", fmt(r.mutationHistogram)],
  ["NATS published / refused (over max_payload)", `${r.busPublished} / ${r.busRefused}`],
  ["undecodable messages published", String(r.busUndecodable)],
  ["poison recorded / expected (missing)", `${r.poisonRecorded} / ${r.poisonExpected} (${r.poisonMissing})`],
  ["poison past max_deliver / max deliveries", `${r.poisonOverDelivered} / ${r.maxPoisonDeliveries}`],
  ["unsettled durables", r.unsettledDurables.length === 0 ? "none" : r.unsettledDurables.join("; ")],
  ["fuzz cases/s", r.casesPerS.toFixed(1)],
  ["valid requests/s (peer)", `${r.validPerS.toFixed(1)}  (ratio ${(r.casesPerS / r.validPerS).toFixed(2)})`],
  ["total time", `${(r.totalMs / 1000).toFixed(1)} s`],
];
const w = Math.max(...rows.map(([k]) => k.length));
process.stdout.write(`\n${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")}\n`);
for (const f of r.failureExamples) process.stdout.write(`  failure: ${f.target} ${f.mutation} -> ${f.code} ${f.details} (${f.size} bytes ${f.bytesHex})\n`);
for (const line of r.internalErrorLines.slice(0, 10)) process.stdout.write(`  service said: ${line.slice(0, 400)}\n`);
const bad = r.crashes > 0 || r.failures > 0 || r.serving < r.services || r.poisonMissing > 0 || r.poisonOverDelivered > 0 || r.unsettledDurables.length > 0;
if (bad) process.stdout.write(`\nFINDINGS above; replay with --seed ${seed}\n`);
process.exitCode = bad ? 1 : 0;
