// A round whose registry calls fail transiently (NATS restarting) after training keeps its allocated
// version and registers it once NATS answers again: no gap in the lineage's versions, no folder
// without a record (bench/chaos found the gap: "object store put … failed: timeout").
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createRegistry, type Registry } from "../../src/domain/registry/index.js";
import { createLogger } from "../../src/platform/telemetry/index.js";
import { problems, registerBase } from "../../tests/trainer-support.js";
import { openRoundJournal } from "./round-journal.js";
import { createRoundRunner } from "./rounds.js";
import { openTrainingSet } from "./training-set.js";
import { ensureMeshTopology } from "../../src/domain/topology/index.js";

describe("trainer round under transient registry failures", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  let registry: Registry;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "rounds-transient-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "rounds-transient-"));
    registry = createRegistry(bus, { cacheDir: join(dir, "cache") });
    await registerBase(registry, "main", join(dir, "base"), 1);
  }, 60_000);

  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("retries allocation and upload, and registers the allocated version", async () => {
    const trainingSet = await openTrainingSet(join(dir, "data", "training-set.jsonl"));
    for (const p of problems("t", 12)) {
      await trainingSet.add({ sampleId: p.id, task: "addition", prompt: p.prompt, completion: p.completion, difficulty: 2, votes: [], outcome: "test", decidedAt: "" });
    }
    const journal = await openRoundJournal(join(dir, "data", "rounds.jsonl"));
    const failures = { allocate: 1, put: 2 };
    const timeout = (what: string): AutodidactError => new AutodidactError(`${what} failed: timeout`, Code.Unavailable);
    const flaky: Registry = {
      ...registry,
      async allocateVersion(lineage, owner) {
        const v = await registry.allocateVersion(lineage, owner);
        // The write landed but its answer was lost: the retry must get the same version back.
        if (failures.allocate-- > 0) throw timeout("KV update registry/version.main");
        return v;
      },
      async putCheckpoint(record, folder) {
        if (failures.put-- > 0) throw timeout(`object store put checkpoints/${record.lineage}/${record.version}`);
        return registry.putCheckpoint(record, folder);
      },
    };
    const runner = createRoundRunner({
      bus,
      registry: flaky,
      trainingSet,
      journal,
      dataDir: join(dir, "data"),
      logger: createLogger("test"),
      defaults: {
        lineages: ["main"],
        threads: 1,
        training: {
          mode: "lora",
          mix: "accumulate",
          anchorRatio: 0.25,
          anchorMinDifficulty: 0,
          anchorMaxDifficulty: 0,
          batchSize: 8,
          steps: 3,
          maxReuse: 100,
          lr: 1e-3,
          weightDecay: 0,
          warmupSteps: 0,
          decayShare: 0,
          maxGradNorm: 0,
          abortGradNorm: 1e6,
          hardestShare: 0,
          loraRank: 2,
          loraAlpha: 4,
          seed: "t",
        },
      },
    });
    await runner.run({ task: "addition" }, () => undefined);
    expect((await registry.listCheckpoints("main")).map((r) => r.version)).toEqual([1, 2]);
    expect(journal.rounds().map((r) => r.end?.status)).toEqual(["done"]);
    expect(await readdir(join(dir, "data", "checkpoints", "main"))).toEqual(["2"]);
    expect(failures).toEqual({ allocate: -1, put: -1 });
    await journal.close();
    await trainingSet.close();
  }, 120_000);
});
