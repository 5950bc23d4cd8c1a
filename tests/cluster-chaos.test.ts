// The CI cluster chaos run: the real mesh (every service a supervised process) in a real loop on a
// 3-node JetStream cluster with every stream and bucket replicated 3 times, with seeded SIGKILLs of
// services and of the nodes leading chosen streams and buckets (restarted after each loss); then
// every invariant of the chaos run must hold (bench/chaos/cluster.ts; `npm run bench:chaos -- --cluster`
// is the bigger run). The seed is printed; set CHAOS_SEED to replay a failing schedule.
import { describe, expect, it } from "vitest";
import { runClusterChaos } from "../bench/chaos/cluster.js";

describe("cluster chaos run (CI size)", () => {
  it("node and service SIGKILLs on a 3-node cluster lose nothing and decide nothing twice", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const lines: string[] = [];
    const report = await runClusterChaos({
      seed,
      kills: 4,
      nodeKills: 3,
      // Long enough for a round between a conductor kill's takeover (a 10 s lease) and the node kills.
      chaosMs: 90_000,
      settleTimeoutMs: 120_000,
      proposalsPerRound: 16,
      trainSteps: 6,
      log: (line) => lines.push(line),
    });
    const summary =
      `seed ${seed}: ${report.kills} service kills, ${report.nodeKills.length} node kills (${report.leadersKilled.join(", ")}), ` +
      `${report.proposed} proposed, ${report.decided} decided, ${report.lost} lost, ${report.decidedTwice} decided twice, ${report.checkpointsRegistered} checkpoints`;
    console.log(`${summary}\n${report.nodeKills.map((k) => `  node ${k.node} (leader of ${k.target}): writes back after ${k.recoveryMs} ms, re-elected after ${k.electionMs} ms`).join("\n")}`);
    const failed = report.invariants.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}`);
    expect(failed, `${summary}\n${lines.join("\n")}\nstate kept in ${report.stateDir}`).toEqual([]);
    expect(report.nodeKills.length).toBeGreaterThanOrEqual(3);
    expect(report.kills).toBeGreaterThanOrEqual(4);
    expect(report.lost).toBe(0);
    expect(report.decidedTwice).toBe(0);
    expect(report.proposed).toBeGreaterThan(0);
  }, 420_000);
});
