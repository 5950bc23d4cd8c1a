// Small implementations of contract services used by the rpc tests (not exported from index.ts).
import { AutodidactError, Code } from "../errors/index.js";
import { CriticService } from "../../gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../gen/autodidact/v1/generator_pb.js";
import { createInfoHandler } from "./service-info.js";
import { implement, type ServiceImplementation } from "./service.js";

/** A promise with its resolver, for tests that must hold a handler at a known point. */
export interface Gate {
  promise: Promise<void>;
  open(): void;
}

export function createGate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Observations the handlers record so tests can assert server-side effects. */
export interface Probe {
  /** Opened when a "gate" or "hang" call has entered its handler. */
  entered: Gate;
  /** Held until the test opens it. */
  release: Gate;
  /** Opened when a handler saw its call's signal abort. */
  aborted: Gate;
  scored: number;
}

export function createProbe(): Probe {
  return { entered: createGate(), release: createGate(), aborted: createGate(), scored: 0 };
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * A critic whose behaviour is chosen by the sample's task: "ok" answers, "code:<n>" throws an
 * AutodidactError with Code n, "crash" throws a plain Error, "hang" never answers, "gate" waits for
 * the probe's release, "big:<n>" answers with an n-byte reason.
 */
export function createTestCritic(probe: Probe): ServiceImplementation {
  return implement(CriticService, {
    async score(request, ctx) {
      const sample = request.sample;
      if (!sample) throw new AutodidactError("sample is required", Code.InvalidArgument);
      const [task, arg] = sample.task.split(":");
      switch (task) {
        case "code":
          throw new AutodidactError(`failure with code ${arg}`, Number(arg) as Code);
        case "crash":
          throw new Error("secret internal detail at /srv/model.onnx");
        case "hang":
          probe.entered.open();
          await waitForAbort(ctx.signal);
          probe.aborted.open();
          throw new AutodidactError("gave up", Code.Canceled);
        case "gate":
          probe.entered.open();
          await probe.release.promise;
          break;
        case "big":
          return { sampleId: sample.id, reason: "x".repeat(Number(arg)) };
        default:
          break;
      }
      probe.scored += 1;
      return {
        sampleId: sample.id,
        criticId: "test-critic",
        approve: sample.completion.length > 0,
        score: sample.tokenLogprobs.reduce((a, b) => a + b, 0),
        reason: `prompt had ${sample.prompt.length} chars`,
      };
    },
    swapModel(request) {
      return { oldVersion: "v0", newVersion: request.source.case === "path" ? request.source.value : String(request.source.value) };
    },
    getAgreement() {
      throw new AutodidactError("no decisions yet", Code.FailedPrecondition);
    },
    getInfo: createInfoHandler(CriticService, {
      instanceId: "critic-test",
      models: () => [{ role: "critic", version: `main@${probe.scored}`, checkpointVersion: BigInt(probe.scored) }],
      tasks: ["addition"],
    }),
  });
}

/**
 * A generator streaming `count` samples "s-0".."s-<count-1>"; difficulty -1 fails with ABORTED after
 * two samples; count 0 streams until the caller stops (then opens probe.aborted).
 */
export function createTestGenerator(probe: Probe): ServiceImplementation {
  return implement(GeneratorService, {
    async *generate(request, ctx) {
      try {
        for (let i = 0; request.count === 0 || i < request.count; i++) {
          if (request.difficulty === -1 && i === 2) throw new AutodidactError("generator lost its model", Code.Aborted);
          if (ctx.signal.aborted) return;
          yield { id: `s-${i}`, task: request.task, difficulty: request.difficulty, seed: request.seed + BigInt(i) };
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        if (ctx.signal.aborted) probe.aborted.open();
      }
    },
    getInfo() {
      return { serviceName: GeneratorService.typeName, instanceId: "generator-test" };
    },
  });
}
