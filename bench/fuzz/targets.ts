/**
 * What the fuzz run aims at: every gRPC method of every service (with the health and reflection
 * services every server adds), and every NATS subject a service consumes, each with valid encoded
 * seed messages that the mutations start from.
 */
import { create, toBinary, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { CheckpointRefSchema } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import { ConsensusKind, DecisionSchema, TimeoutOutcome } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { CriticService } from "../../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { SampleSchema, VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { TrainerService } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { AdaptationMode, DataMix } from "../../src/gen/autodidact/v1/training_pb.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";

/** The lineage the fuzz mesh registers a tiny checkpoint under (deeper code paths for version fields). */
export const FUZZ_LINEAGE = "fuzzbase";

/** One gRPC method of one service process. */
export interface RpcTarget {
  /** Mesh member serving it. */
  readonly member: string;
  readonly method: DescMethod;
  readonly seeds: readonly Uint8Array[];
  /** Deadline of one call. */
  readonly deadlineMs: number;
  /**
   * A stream meant to stay open (health Watch; StartRound while its round runs or waits its turn): it may
   * end on its deadline, but only after it sent something. Every other call that ends DEADLINE_EXCEEDED
   * or CANCELLED hung on its input and is a failure.
   */
  readonly staysOpen: boolean;
}

/** Deadline of one call (Health Watch, open until its deadline by design, gets 300 ms). */
export const DEFAULT_DEADLINE_MS = 20_000;

/** Streams that stay open by design, by `<service type name>.<method local name>`. */
const STAYS_OPEN = new Set(["grpc.health.v1.Health.watch", "autodidact.v1.TrainerService.startRound"]);

/** One NATS subject and the durables that consume it. */
export interface SubjectTarget {
  readonly subject: string;
  readonly schema: DescMessage;
  /** [stream, durable] of every consumer of the subject in the fuzz mesh. */
  readonly durables: ReadonlyArray<readonly [string, string]>;
  readonly seeds: readonly Uint8Array[];
}

const enc = <T extends DescMessage>(schema: T, init: Parameters<typeof create<T>>[1]): Uint8Array => toBinary(schema, create(schema, init));

/** Valid requests per method local name; a method without an entry starts from its empty request. */
function seedsFor(method: DescMethod): Uint8Array[] {
  const sample = { id: "fuzz-seed-sample", task: "addition", prompt: "12+34=", completion: "64", difficulty: 2 };
  const byName: Record<string, Uint8Array[]> = {
    "autodidact.v1.GeneratorService.generate": [
      enc(GeneratorService.method.generate.input, { count: 2, task: "addition" }),
      enc(GeneratorService.method.generate.input, { count: 1, seed: 42n, temperature: 0.5, difficulty: 2, publish: true, round: 1 }),
    ],
    "autodidact.v1.CriticService.score": [enc(CriticService.method.score.input, { sample })],
    "autodidact.v1.CriticService.swapModel": [
      enc(CriticService.method.swapModel.input, { source: { case: "path", value: "/nonexistent/model" } }),
      enc(CriticService.method.swapModel.input, { source: { case: "checkpointVersion", value: 1n }, lineage: FUZZ_LINEAGE }),
    ],
    "autodidact.v1.CriticService.getAgreement": [enc(CriticService.method.getAgreement.input, { task: "addition", window: 10 })],
    "autodidact.v1.TrainerService.startRound": [
      enc(TrainerService.method.startRound.input, { task: "addition", training: { steps: 2n, learningRate: 0.001 } }),
      // Every TrainingConfig field set, so the mutations reach each of them (and the nested messages).
      enc(TrainerService.method.startRound.input, {
        task: "addition",
        lineage: FUZZ_LINEAGE,
        maxSamples: 8n,
        training: {
          mode: AdaptationMode.LORA,
          mix: DataMix.REPLACE,
          steps: 2n,
          batchSize: 4,
          learningRate: 0.001,
          weightDecay: 0.01,
          warmupSteps: 1,
          decayShare: 0.5,
          maxGradNorm: 1,
          abortGradNorm: 1e6,
          maxReuse: 2,
          hardestShare: 0.25,
          seed: "fuzz",
          lora: { rank: 2, alpha: 4 },
          anchor: { ratio: 0.5, minDifficulty: 1, maxDifficulty: 2 },
        },
      }),
    ],
    "autodidact.v1.TrainerService.fetchCheckpoint": [enc(TrainerService.method.fetchCheckpoint.input, { lineage: FUZZ_LINEAGE, version: 1n, chunkBytes: 4096 })],
    "autodidact.v1.MonitorService.evaluate": [enc(MonitorService.method.evaluate.input, { lineage: FUZZ_LINEAGE, version: 1n, limitPerDifficulty: 1 })],
    "autodidact.v1.MonitorService.promote": [enc(MonitorService.method.promote.input, { lineage: FUZZ_LINEAGE, version: 1n, reason: "fuzz" })],
    "autodidact.v1.MonitorService.rollback": [enc(MonitorService.method.rollback.input, { lineage: FUZZ_LINEAGE, toVersion: 1n, reason: "fuzz" })],
    "autodidact.v1.MonitorService.history": [enc(MonitorService.method.history.input, { lineage: FUZZ_LINEAGE, limit: 5 })],
    "autodidact.v1.MonitorService.lineage": [enc(MonitorService.method.lineage.input, { lineage: FUZZ_LINEAGE, version: 1n })],
    "autodidact.v1.MonitorService.setPolicy": [
      enc(MonitorService.method.setPolicy.input, {
        policy: { minAccuracyDelta: -0.02, maxDifficultyRegression: 0.1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 0.5, minDiversityRatio: 0.5, maxDriftKl: 5, autoPromote: true, note: "fuzz" },
      }),
    ],
    "autodidact.v1.MonitorService.getConsensusPolicy": [enc(MonitorService.method.getConsensusPolicy.input, { name: "fuzz" })],
    "autodidact.v1.MonitorService.setConsensusPolicy": [
      enc(MonitorService.method.setConsensusPolicy.input, {
        policy: { name: "fuzz", version: 1n, kind: ConsensusKind.K_OF_N, critics: ["a", "b", "c"], k: 2, timeoutMs: 30_000n, onTimeout: TimeoutOutcome.REJECT, note: "fuzz" },
      }),
    ],
    "grpc.health.v1.Health.check": [enc(Health.method.check.input, { service: "" })],
    "grpc.health.v1.Health.watch": [enc(Health.method.watch.input, { service: "" })],
    "grpc.reflection.v1.ServerReflection.serverReflectionInfo": [
      enc(ServerReflection.method.serverReflectionInfo.input, { messageRequest: { case: "listServices", value: "" } }),
      enc(ServerReflection.method.serverReflectionInfo.input, { messageRequest: { case: "fileContainingSymbol", value: "autodidact.v1.CriticService" } }),
    ],
    "grpc.reflection.v1alpha.ServerReflection.serverReflectionInfo": [
      enc(ServerReflectionAlpha.method.serverReflectionInfo.input, { messageRequest: { case: "listServices", value: "" } }),
    ],
  };
  return byName[`${method.parent.typeName}.${method.localName}`] ?? [toBinary(method.input, create(method.input))];
}

/** Every gRPC method of the fuzz mesh's members, with seeds and a deadline. */
export function rpcTargets(members: Record<"generator" | "critic" | "trainer" | "monitor", string>): RpcTarget[] {
  const services: Array<[string, DescService]> = [
    [members.generator, GeneratorService],
    [members.critic, CriticService],
    [members.trainer, TrainerService],
    [members.monitor, MonitorService],
  ];
  const common: DescService[] = [Health, ServerReflection, ServerReflectionAlpha];
  const out: RpcTarget[] = [];
  for (const [member, service] of services) {
    for (const method of [...service.methods, ...common.flatMap((s) => s.methods)]) {
      const key = `${method.parent.typeName}.${method.localName}`;
      // Watch streams until the deadline by design: a short one, so it ends DEADLINE_EXCEEDED.
      const deadlineMs = key === "grpc.health.v1.Health.watch" ? 300 : DEFAULT_DEADLINE_MS;
      out.push({ member, method, seeds: seedsFor(method), deadlineMs, staysOpen: STAYS_OPEN.has(key) });
    }
  }
  return out;
}

/** Every subject the services consume, with the durables that consume it in the fuzz mesh. */
export function subjectTargets(critics: readonly string[]): SubjectTarget[] {
  return [
    {
      subject: Subjects.proposed("addition"),
      schema: SampleSchema,
      durables: [...critics.map((c) => [Streams.Samples, `critic-${c}`] as const), [Streams.Samples, "consensus-samples"] as const],
      seeds: [enc(SampleSchema, { id: "fuzz-bus-sample", task: "addition", prompt: "21+93=", completion: "15", difficulty: 2 })],
    },
    {
      subject: Subjects.verdicts("addition"),
      schema: VerdictSchema,
      durables: [[Streams.Verdicts, "consensus-verdicts"]],
      seeds: [enc(VerdictSchema, { sampleId: "fuzz-bus-sample", criticId: "critic-a", criticKind: "rules", approve: true, score: 1, reason: "fuzz", task: "addition" })],
    },
    {
      subject: Subjects.decisions("addition"),
      schema: DecisionSchema,
      durables: [
        [Streams.Decisions, "trainer"],
        [Streams.Decisions, "monitor-round-stats"],
      ],
      seeds: [
        enc(DecisionSchema, {
          sampleId: "fuzz-bus-decision",
          task: "addition",
          accepted: false,
          sample: { id: "fuzz-bus-decision", task: "addition", prompt: "21+93=", completion: "15", difficulty: 2 },
          votes: [{ sampleId: "fuzz-bus-decision", criticId: "critic-a", approve: false, score: 0, reason: "fuzz" }],
          outcomeDetail: "fuzz",
        }),
      ],
    },
    {
      subject: Subjects.checkpoints("candidate"),
      schema: CheckpointRefSchema,
      durables: [[Streams.Checkpoints, "monitor-candidates"]],
      seeds: [enc(CheckpointRefSchema, { lineage: FUZZ_LINEAGE, version: 1n, parentVersion: 0n, round: 0, task: "addition" })],
    },
  ];
}
