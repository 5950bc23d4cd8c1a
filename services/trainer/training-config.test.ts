// The one place a round's TrainingConfig meets the trainer's flags: unset fields take the flag, set ones
// are checked against their range and refused with INVALID_ARGUMENT naming the field.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AdaptationMode, DataMix, TrainingConfigSchema, type TrainingConfig } from "../../src/gen/autodidact/v1/training_pb.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { defineOptions, serviceOptions } from "../../src/platform/config/index.js";
import type { ServiceConfig } from "../../src/platform/host/index.js";
import { MAX_EXAMPLES_PER_ROUND, resolveTraining, TRAINING_RANGES, type TrainingDefaults } from "./training-config.js";
import { trainerOptions, trainingDefaultsOf } from "./trainer-service.js";

const FLAGS: TrainingDefaults = {
  mode: "lora",
  mix: "accumulate",
  steps: 0,
  batchSize: 16,
  lr: 1e-3,
  weightDecay: 0.05,
  warmupSteps: 3,
  decayShare: 0.2,
  maxGradNorm: 2,
  abortGradNorm: 1e6,
  maxReuse: 2,
  hardestShare: 0,
  seed: "flags",
  loraRank: 4,
  loraAlpha: 8,
  anchorRatio: 0.25,
  anchorMinDifficulty: 0,
  anchorMaxDifficulty: 0,
};

const config = (init: Parameters<typeof create<typeof TrainingConfigSchema>>[1]): TrainingConfig => create(TrainingConfigSchema, init);

function refusal(fn: () => unknown): AutodidactError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
    return err as AutodidactError;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

/** A TrainingConfig that sets exactly one numeric setting (by its key in the ranges table). */
function setting(key: keyof typeof TRAINING_RANGES, value: number): TrainingConfig {
  switch (key) {
    case "steps":
      return config({ steps: BigInt(Math.round(value)) });
    case "batchSize":
      return config({ batchSize: value });
    case "lr":
      return config({ learningRate: value });
    case "weightDecay":
      return config({ weightDecay: value });
    case "warmupSteps":
      return config({ warmupSteps: value });
    case "decayShare":
      return config({ decayShare: value });
    case "maxGradNorm":
      return config({ maxGradNorm: value });
    case "abortGradNorm":
      return config({ abortGradNorm: value });
    case "maxReuse":
      return config({ maxReuse: value });
    case "hardestShare":
      return config({ hardestShare: value });
    case "loraRank":
      return config({ lora: { rank: value } });
    case "loraAlpha":
      return config({ lora: { alpha: value } });
    case "anchorRatio":
      return config({ anchor: { ratio: value } });
    case "anchorMinDifficulty":
      return config({ anchor: { minDifficulty: value } });
    case "anchorMaxDifficulty":
      return config({ anchor: { maxDifficulty: value } });
  }
}

describe("resolveTraining", () => {
  it("takes every unset field from the flags", () => {
    expect(resolveTraining(undefined, FLAGS)).toEqual(FLAGS);
    expect(resolveTraining(config({}), FLAGS)).toEqual(FLAGS);
  });

  it("takes every set field from the request, explicit zeros included", () => {
    const c = config({
      mode: AdaptationMode.FULL,
      mix: DataMix.REPLACE,
      steps: 40n,
      batchSize: 32,
      learningRate: 5e-4,
      weightDecay: 0,
      warmupSteps: 0,
      decayShare: 0,
      maxGradNorm: 0,
      abortGradNorm: 100,
      maxReuse: 7,
      hardestShare: 0.5,
      seed: "run-7",
      lora: { rank: 16, alpha: 32 },
      anchor: { ratio: 0.5, minDifficulty: 1, maxDifficulty: 3 },
    });
    expect(resolveTraining(c, FLAGS)).toEqual({
      mode: "full",
      mix: "replace",
      steps: 40,
      batchSize: 32,
      lr: 5e-4,
      weightDecay: 0,
      warmupSteps: 0,
      decayShare: 0,
      maxGradNorm: 0,
      abortGradNorm: 100,
      maxReuse: 7,
      hardestShare: 0.5,
      seed: "run-7",
      loraRank: 16,
      loraAlpha: 32,
      anchorRatio: 0.5,
      anchorMinDifficulty: 1,
      anchorMaxDifficulty: 3,
    });
    // A nested message sets only its own fields: the LoRA alpha stays the flag's.
    expect(resolveTraining(config({ lora: { rank: 2 } }), FLAGS)).toMatchObject({ loraRank: 2, loraAlpha: 8 });
  });

  it("keeps the flag's anchor ratio as a floor: a request may raise it, not lower it", () => {
    expect(resolveTraining(config({ anchor: { ratio: 0.1 } }), FLAGS).anchorRatio).toBe(0.25);
    expect(resolveTraining(config({ anchor: { ratio: 0.6 } }), FLAGS).anchorRatio).toBe(0.6);
  });

  it("refuses a value just outside each range with the field's name, and accepts each bound inside", () => {
    for (const [key, r] of Object.entries(TRAINING_RANGES) as [keyof typeof TRAINING_RANGES, (typeof TRAINING_RANGES)[keyof typeof TRAINING_RANGES]][]) {
      const step = r.integer ? 1 : 1e-9 * Math.max(1, Math.abs(r.min));
      const below = r.aboveMin ? r.min : r.min - step;
      expect(refusal(() => resolveTraining(setting(key, below), FLAGS)).rawMessage, key).toMatch(new RegExp(`^${r.field.replace(/\./g, "\\.")} must be`));
      const above = r.belowMax ? r.max : r.integer ? r.max + 1 : r.max * (1 + 1e-9);
      expect(refusal(() => resolveTraining(setting(key, above), FLAGS)).rawMessage, key).toMatch(new RegExp(`^${r.field.replace(/\./g, "\\.")} must be`));
      const inside = r.aboveMin ? r.min + step : r.min;
      expect(() => resolveTraining(setting(key, inside), FLAGS), `${key}=${inside}`).not.toThrow();
    }
    expect(refusal(() => resolveTraining(config({ learningRate: Number.NaN }), FLAGS)).rawMessage).toBe(
      "training.learning_rate must be a number in (0, 10], got NaN",
    );
    expect(refusal(() => resolveTraining(config({ steps: 2n ** 64n - 1n }), FLAGS)).rawMessage).toMatch(/^training\.steps must be an integer in \[0, 1000000\]/);
    expect(refusal(() => resolveTraining(config({ batchSize: 3.5 }), FLAGS)).rawMessage).toMatch(/^training\.batch_size must be an integer/);
  });

  it("refuses unknown enum values, a bad seed and an empty anchor difficulty range", () => {
    expect(refusal(() => resolveTraining(config({ mode: 3 as AdaptationMode }), FLAGS)).rawMessage).toBe("training.mode 3 is not an AdaptationMode (LORA or FULL)");
    expect(refusal(() => resolveTraining(config({ mix: -1 as DataMix }), FLAGS)).rawMessage).toBe("training.mix -1 is not a DataMix (ACCUMULATE or REPLACE)");
    expect(refusal(() => resolveTraining(config({ seed: "" }), FLAGS)).rawMessage).toBe("training.seed must be 1..256 characters, got 0");
    expect(refusal(() => resolveTraining(config({ seed: "x".repeat(257) }), FLAGS)).rawMessage).toMatch(/^training\.seed/);
    expect(refusal(() => resolveTraining(config({ anchor: { minDifficulty: 4, maxDifficulty: 2 } }), FLAGS)).rawMessage).toBe(
      "training.anchor: min_difficulty 4 is above max_difficulty 2",
    );
    // One bound set, the other 0 (= the pool's): no contradiction.
    expect(resolveTraining(config({ anchor: { minDifficulty: 4 } }), FLAGS).anchorMinDifficulty).toBe(4);
  });

  it("bounds the examples one round may build (steps × batch size)", () => {
    expect(resolveTraining(config({ steps: 15_625n, batchSize: 64 }), FLAGS).steps).toBe(15_625);
    expect(refusal(() => resolveTraining(config({ steps: 15_626n, batchSize: 64 }), FLAGS)).rawMessage).toBe(
      `training.steps × training.batch_size = 15626 × 64 exceeds ${MAX_EXAMPLES_PER_ROUND} examples per round`,
    );
    // steps = 0 is one pass over the pool, bounded by the pool itself.
    expect(resolveTraining(config({ steps: 0n, batchSize: 4096 }), FLAGS).steps).toBe(0);
  });

  it("names the flag when a default is out of range (the trainer resolves an empty config at start)", () => {
    expect(refusal(() => resolveTraining(undefined, { ...FLAGS, lr: 0 })).rawMessage).toBe(
      "--lr (the trainer's default for training.learning_rate) must be a number in (0, 10], got 0",
    );
    expect(refusal(() => resolveTraining(undefined, { ...FLAGS, anchorMinDifficulty: 5, anchorMaxDifficulty: 3 })).rawMessage).toMatch(/^--anchor-min\/max-difficulty/);
    expect(refusal(() => resolveTraining(undefined, { ...FLAGS, seed: "" })).rawMessage).toMatch(/^--seed/);
  });

  it("builds its defaults from the trainer's flags, whose bounds come from the same ranges", () => {
    const parser = defineOptions({ ...serviceOptions, ...trainerOptions });
    const cfg = parser.parse(["--lr", "0.02", "--weight-decay", "0.1", "--hardest-share", "0.3", "--anchor-max-difficulty", "3"], {}).values as unknown as ServiceConfig<typeof trainerOptions>;
    expect(resolveTraining(undefined, trainingDefaultsOf(cfg))).toMatchObject({ lr: 0.02, weightDecay: 0.1, hardestShare: 0.3, anchorMaxDifficulty: 3, batchSize: 16, mode: "lora" });
    expect(() => parser.parse(["--batch-size", "1"], {})).toThrow(/--batch-size/);
    expect(() => parser.parse(["--weight-decay", "2"], {})).toThrow(/--weight-decay/);
  });
});
