// The CI chaos run: the real mesh (nats-server + every service as a supervised process) in a real
// loop driven by the conductor, with seeded SIGKILLs of random services (the conductor always among
// them) and a nats-server restart; afterwards every invariant
// of ARCHITECTURE.md ("Invariants") the streams, the registry and the trainer's files can show must hold (bench/chaos has
// the bigger run). The seed is printed; set CHAOS_SEED to replay a failing schedule.
import { describe, expect, it } from "vitest";
import { runChaos } from "../bench/chaos/chaos.js";

describe("chaos run (CI size)", () => {
  it("SIGKILLs and a nats-server restart during a real loop lose nothing and decide nothing twice", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const lines: string[] = [];
    const report = await runChaos({
      seed,
      kills: 6,
      natsRestarts: 1,
      chaosMs: 40_000,
      settleTimeoutMs: 90_000,
      proposalsPerRound: 16,
      trainSteps: 6,
      log: (line) => lines.push(line),
    });
    const summary = `seed ${seed}: ${report.kills} kills (conductor ${report.killsByService["conductor"] ?? 0}), ${report.natsRestarts} nats restarts, ${report.proposed} proposed, ${report.decided} decided, ` +
      `${report.lost} lost, ${report.decidedTwice} decided twice, ${report.roundsDone} rounds (once per lineage: ${report.roundsOnce}), ${report.checkpointsRegistered} checkpoints`;
    console.log(summary);
    const failed = report.invariants.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}`);
    expect(failed, `${summary}\n${lines.join("\n")}\nstate kept in ${report.stateDir}`).toEqual([]);
    expect(report.kills).toBeGreaterThanOrEqual(6);
    expect(report.natsRestarts).toBeGreaterThanOrEqual(1);
    expect(report.lost).toBe(0);
    expect(report.decidedTwice).toBe(0);
    expect(report.killsByService["conductor"]).toBeGreaterThanOrEqual(1);
    expect(report.roundsOnce).toBe(true);
    expect(report.proposed).toBeGreaterThan(0);
  }, 240_000);
});
