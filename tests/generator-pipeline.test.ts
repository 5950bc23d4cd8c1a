// The pipeline in-process on a real nats-server: the generator's proposing loop (tiny model) feeds two
// critics of different kinds, and the consensus service decides every proposed sample exactly once from
// their votes (each naming critic and kind), the sample naming the generator's model version.
import { fromBinary } from "@bufbuild/protobuf";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import type { OptionSpecs } from "../src/platform/config/index.js";
import { DecisionSchema, type Decision } from "../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { startServiceWithArgs, type RunningService, type ServiceSpec } from "../src/platform/host/index.js";
import { criticService } from "../services/critic/index.js";
import { consensusService } from "../services/consensus/index.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";
import { generatorService } from "../services/generator/index.js";
import { ensureMeshTopology, Streams } from "../src/domain/topology/index.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("generator → critics → consensus", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  const running: RunningService[] = [];
  const start = async <T extends OptionSpecs>(spec: ServiceSpec<T>, args: string[]): Promise<void> => {
    running.push(await startServiceWithArgs(spec, ["--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn", ...args]));
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "pipeline-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "pipeline-"));
    await saveTinyDecoder(join(dir, "m"), 4);
  }, 60_000);
  afterAll(async () => {
    for (const s of running.reverse()) await s.stop();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("every proposed sample gets exactly one decision, made from the critics' votes", async () => {
    await start(criticService, ["--kind", "rules", "--critic-id", "rules"]);
    await start(criticService, ["--kind", "novelty", "--critic-id", "novelty"]);
    await start(consensusService, ["--consensus-critics", "rules,novelty"]);
    await start(generatorService, ["--model", join(dir, "m"), "--propose", "--propose-limit", "24", "--batch-size", "8", "--difficulty", "2", "--seed", "9"]);

    const decisions = new Map<string, Decision[]>();
    const proposed = new Set<string>();
    const c1 = await consume(bus, { stream: Streams.Decisions, durable: "pipe-decisions" }, async (m) => {
      const d = fromBinary(DecisionSchema, m.data);
      decisions.set(d.sampleId, [...(decisions.get(d.sampleId) ?? []), d]);
    }, { maxInFlight: 16 });
    const c2 = await consume(bus, { stream: Streams.Samples, durable: "pipe-samples" }, async (m) => void proposed.add(fromBinary(SampleSchema, m.data).id), { maxInFlight: 16 });
    const until = Date.now() + 60_000;
    while ((proposed.size < 24 || [...proposed].some((id) => !decisions.has(id))) && Date.now() < until) await sleep(100);
    await sleep(500);
    await c1.stop();
    await c2.stop();
    expect(proposed.size).toBe(24);
    expect(decisions.size).toBe(24);
    for (const id of proposed) {
      const ds = decisions.get(id)!;
      expect(ds).toHaveLength(1);
      const d = ds[0]!;
      expect(d.sample?.generatorModelVersion).toMatch(/^sha256:/);
      const voters = d.votes.map((v) => `${v.criticId}/${v.criticKind}`);
      expect(new Set(voters).size).toBe(voters.length);
      for (const v of voters) expect(["novelty/novelty", "rules/rules"]).toContain(v);
      // 2-of-2: accepted only with both approvals; a single rejection decides early.
      if (d.accepted) expect(d.votes.filter((v) => v.approve)).toHaveLength(2);
      else expect(d.votes.some((v) => !v.approve)).toBe(true);
    }
  }, 90_000);
});
