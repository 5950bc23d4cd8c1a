// A task pack that lives outside the services (examples/tasks/number-words.ts: a module over a JSON Lines
// data set) runs a round through the real mesh: every service loads it from its --task-module flag (inside
// its --task-module-dir), the run spec names it, the conductor records its digest and checks the services
// run the same code, and every sample and checkpoint manifest carries the task identity.
import { createHash } from "node:crypto";
import { create, fromBinary, toJsonString } from "@bufbuild/protobuf";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "./cli-support.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../apps/cli/local-mesh.js";
import { connectBus, type Bus } from "../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../src/platform/nats-auth/index.js";
import { CurriculumPolicy_Kind, RunSpecSchema } from "../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, TimeoutOutcome } from "../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { createRegistry } from "../src/domain/registry/index.js";
import { Streams } from "../src/domain/topology/index.js";
import { createTaskTokenizer, loadTaskModules, getTaskPack } from "../src/domain/tasks/index.js";
import { createTransformerConfig, initParameters, saveModel } from "../src/engine/index.js";
import { readStream } from "../bench/chaos/streams.js";

const EXAMPLES = fileURLToPath(new URL("../examples/tasks", import.meta.url));
const MODULE = join(EXAMPLES, "number-words.ts");

/** Runs the CLI against the mesh whose state is in `stateDir`. */
const autodidact = (args: string[], stateDir: string) => runCli(args, { set: { AUTODIDACT_STATE_DIR: stateDir }, unset: ["AUTODIDACT_CONDUCTOR"] });

/** A tiny random decoder sized from the pack's own tokenizer. */
async function saveTinyBase(dir: string): Promise<void> {
  const tokenizer = createTaskTokenizer(getTaskPack("number-words"));
  const config = createTransformerConfig({ vocabSize: tokenizer.vocabSize, numLayers: 1, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 64, positional: "rotary" });
  await saveModel(dir, { config, params: initParameters(config, 7), tokenizer });
}

describe("a task module through the real mesh", () => {
  let stateDir: string;
  let mesh: LocalMesh | undefined;
  let bus: Bus | undefined;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "task-module-mesh-"));
    await loadTaskModules({ modules: [MODULE], dirs: [EXAMPLES] });
    await saveTinyBase(join(stateDir, "models", "tiny-main"));
    const task = ["--task-module-dir", EXAMPLES, "--task-module", MODULE, "--task", "number-words"];
    const quiet = ["--log-level", "warn"];
    const members: MeshMember[] = [
      { name: "generator", kind: "generator", args: ["--batch-size", "4", ...task, ...quiet] },
      { name: "critic-accept", kind: "critic", args: ["--kind", "accept-all", "--critic-id", "accept", ...task, ...quiet] },
      { name: "consensus", kind: "consensus", args: quiet },
      { name: "trainer", kind: "trainer", args: ["--steps", "4", "--batch-size", "4", "--max-reuse", "1000", "--train-threads", "1", ...task, ...quiet] },
      { name: "monitor", kind: "monitor", args: ["--eval-limit", "2", "--eval-min-difficulty", "1", "--eval-max-difficulty", "3", "--eval-samples", "2", "--dashboard-port", "-1", ...task, ...quiet] },
      { name: "conductor", kind: "conductor", args: ["--poll-interval", "100ms", "--progress-every", "200ms", "--retry-delay", "200ms", "--task-module-dir", EXAMPLES, "--task-module", MODULE, ...quiet] },
    ];
    mesh = await startLocalMesh({
      stateDir,
      members,
      readyTimeoutMs: 240_000,
      beforeServices: async (admin) => {
        const credentials = await resolveNatsCredentials({ natsNkeyFile: join(stateDir, "secrets", "admin.nk") });
        bus = await connectBus({ servers: `nats://${admin.nc.getServer()}`, name: "task-module-mesh-test", ...(credentials ? { credentials } : {}) });
      },
    });
  }, 300_000);

  afterAll(async () => {
    await bus?.close();
    await mesh?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("runs a round of the example pack, named by its module in the run spec; samples and checkpoints carry its identity", async () => {
    const spec = {
      name: "words",
      task: "number-words",
      taskModule: MODULE,
      lineages: [{ name: "main", baseModel: "tiny-main" }],
      curriculum: { kind: CurriculumPolicy_Kind.FIXED_STEP, start: 2, max: 3 },
      proposalsPerRound: 8,
      stop: { maxRounds: 1 },
      critics: [{ id: "accept", kind: "accept-all" }],
      consensus: { kind: ConsensusKind.K_OF_N, critics: ["accept"], k: 1, timeoutMs: 5000n, onTimeout: TimeoutOutcome.REJECT },
      training: { steps: 4n, batchSize: 4 },
      gate: { minAccuracyDelta: -1, maxDifficultyRegression: 1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 1, maxDriftKl: 1e9, autoPromote: true },
      labels: { anchor: { min: 1, max: 2 }, validation: { min: 1, max: 2 }, test: { min: 1, max: 3 } },
      seed: 3n,
    };
    const file = join(stateDir, "run.json");
    await writeFile(file, toJsonString(RunSpecSchema, create(RunSpecSchema, spec)));
    const created = await autodidact(["run", "create", "-f", file], stateDir);
    expect(created.code, created.err).toBe(0);
    const watched = await autodidact(["run", "watch", "words"], stateDir);
    expect(watched.code, watched.out + watched.err).toBe(0);
    expect(watched.out).toMatch(/succeeded: ran 1 round/);

    const digest = createHash("sha256").update(await readFile(MODULE)).digest("hex");
    const got = JSON.parse((await autodidact(["run", "get", "words", "--json"], stateDir)).out) as { taskIdentity?: { digest: string } };
    expect(got.taskIdentity?.digest).toBe(digest);
    const samples = (await readStream(bus!, Streams.Samples)).map((m) => fromBinary(SampleSchema, m.data)).filter((s) => !s.real);
    expect(samples.length).toBeGreaterThanOrEqual(8);
    for (const s of samples) {
      expect(s.task).toBe("number-words");
      expect(s.taskIdentity).toMatchObject({ name: "number-words", version: "1.0.0", digest });
      expect(s.prompt).toMatch(/^[0-9]{2}=$/);
    }
    const registry = createRegistry(bus!, { cacheDir: join(stateDir, "test-cache") });
    const trained = (await registry.listCheckpoints("main")).filter((r) => r.round > 0);
    expect(trained.length).toBeGreaterThan(0);
    expect((trained[0]!.manifest as { taskIdentity?: { digest: string } }).taskIdentity?.digest).toBe(digest);

    // A run naming a module outside the conductor's configured directories is refused, naming the file.
    const outside = join(stateDir, "elsewhere.ts");
    await writeFile(outside, "export default {};\n");
    await writeFile(file, toJsonString(RunSpecSchema, create(RunSpecSchema, { ...spec, name: "words-outside", taskModule: outside })));
    const refused = await autodidact(["run", "create", "-f", file], stateDir);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain(outside);
    expect(refused.err).toMatch(/outside the configured task module directories/);
  }, 240_000);
});
