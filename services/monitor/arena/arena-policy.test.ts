// The arena policy is versioned in the registry on a real nats-server: the same settings keep their
// version, other settings become the next version, and bad settings are refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../../src/platform/bus/index.js";
import { ensureMeshTopology } from "../../../src/domain/topology/index.js";
import { openMonitorRecords, type GatePolicyRecordKey } from "../../../src/domain/registry/index.js";
import { arenaPolicyOf, installArenaPolicy, type ArenaFlags } from "./arena-policy.js";

const flags: ArenaFlags = { arenaRule: "threshold", arenaGames: 40, arenaThreshold: 0.55, arenaSimulations: 64, arenaSprtElo1: 35 };

describe("arena policy versions", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "arena-policy-test" });
    await ensureMeshTopology(bus);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  it("keeps the version of unchanged settings and numbers changed ones", async () => {
    const records = openMonitorRecords<never, GatePolicyRecordKey>(bus);
    const first = await installArenaPolicy(records, arenaPolicyOf(flags));
    expect(first).toMatchObject({ version: 1, rule: "threshold", maxGames: 40, threshold: 0.55 });
    expect((await installArenaPolicy(records, arenaPolicyOf(flags))).version).toBe(1);
    const sprt = await installArenaPolicy(records, arenaPolicyOf({ ...flags, arenaRule: "sprt" }));
    expect(sprt).toMatchObject({ version: 2, rule: "sprt" });
    const none = await installArenaPolicy(records, arenaPolicyOf({ ...flags, arenaRule: "none" }));
    expect(none).toMatchObject({ version: 3, rule: "none" });
    expect((await records.getArenaPolicy<{ version: number; rule: string }>())?.policy).toMatchObject({ version: 3, rule: "none" });
    expect(() => arenaPolicyOf({ ...flags, arenaRule: "best-of-3" })).toThrow(/rule must be/);
  });
});
