// The bus critic on a real nats-server: replicas of one critic id share its durable (each sample judged
// once per critic, not once per replica), and a novelty critic learns accepted samples from decisions.>.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema, type Verdict } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createCritic } from "./critic.js";
import { createNoveltyJudge, createRulesJudge } from "./judges.js";
import { ensureMeshTopology, Streams, Subjects } from "../../src/domain/topology/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("createCritic", () => {
  let nats: NatsServerProcess;
  const buses: Bus[] = [];
  const connect = async (name: string): Promise<Bus> => {
    const b = await connectBus({ servers: nats.url, name });
    buses.push(b);
    return b;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    await ensureMeshTopology(await connect("critic-test"));
  });
  afterAll(async () => {
    for (const b of buses.reverse()) await b.close();
    await nats?.stop();
  });

  it("replicas of one critic id share the work: every sample judged exactly once", async () => {
    const r1 = createCritic({ bus: await connect("r1"), criticId: "shared", judge: createRulesJudge(), maxInFlight: 4 });
    const r2 = createCritic({ bus: await connect("r2"), criticId: "shared", judge: createRulesJudge(), maxInFlight: 4 });
    expect(r1.durable).toBe(r2.durable);
    await r1.start();
    await r2.start();
    const bus = buses[0]!;
    const n = 60;
    for (let i = 0; i < n; i++) {
      const s = create(SampleSchema, { id: `rep-${i}`, task: "addition", prompt: "21+43=", completion: "64" });
      await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, s), { msgId: s.id });
    }
    while (r1.stats().published + r2.stats().published < n) await sleep(50);
    await sleep(300);
    expect(r1.stats().judged + r2.stats().judged).toBe(n);
    expect(r1.stats().judged).toBeGreaterThan(0);
    expect(r2.stats().judged).toBeGreaterThan(0);
    const verdicts: Verdict[] = [];
    const c = await consume(bus, { stream: Streams.Verdicts, durable: "check-shared" }, async (m) => void verdicts.push(fromBinary(VerdictSchema, m.data)));
    while (verdicts.length < n) await sleep(50);
    await c.stop();
    expect(new Set(verdicts.map((v) => v.sampleId)).size).toBe(n);
    expect(verdicts.every((v) => v.criticId === "shared" && v.approve && v.criticKind === "rules")).toBe(true);
    await r1.stop();
    await r2.stop();
  });

  it("a novelty critic remembers samples accepted on decisions.> and rejects their near-duplicates", async () => {
    const critic = createCritic({ bus: await connect("nov"), criticId: "nov", judge: createNoveltyJudge({ threshold: 0.6 }) });
    await critic.start();
    const bus = buses[0]!;
    const original = create(SampleSchema, { id: "orig", task: "addition", prompt: "123456+654321=", completion: "777777" });
    expect((await critic.score(original)).approve).toBe(true);
    const decision = create(DecisionSchema, { sampleId: "orig", task: "addition", accepted: true, sample: original, decidedAt: timestampNow() });
    await bus.publish(Subjects.decisions("addition"), toBinary(DecisionSchema, decision), { msgId: "orig" });
    while (critic.stats().decisionsSeen < 1) await sleep(20);
    const near = await critic.score(create(SampleSchema, { id: "near", task: "addition", prompt: "123456+654321=", completion: "777778" }));
    expect(near.approve).toBe(false);
    expect(near.reason).toContain("orig");
    expect(near.criticId).toBe("nov");
    await critic.stop();
  });
});
