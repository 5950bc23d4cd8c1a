// Helpers of the trainer tests: tiny base checkpoints registered as promoted, accepted/rejected decisions.
import { create, toBinary } from "@bufbuild/protobuf";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type Bus } from "../src/platform/bus/index.js";
import { DecisionSchema } from "../src/gen/autodidact/v1/consensus_pb.js";
import { listCheckpointFiles, type Registry } from "../src/domain/registry/index.js";
import { initParameters, saveModel } from "../src/engine/index.js";
import { saveTinyDecoder, tinyDecoderConfig } from "../src/domain/serving/test-models.js";
import { createTaskTokenizer, getTaskPack } from "../src/domain/tasks/index.js";
import { Subjects } from "../src/domain/topology/index.js";

/** A test problem of the addition task: a sample id with its prompt and (reversed-sum) completion. */
export interface Problem {
  id: string;
  prompt: string;
  completion: string;
  /** Operand digits (default 2). */
  difficulty?: number;
}

/** `count` distinct addition problems with ids `<prefix>-<i>` (deterministic). */
export function problems(prefix: string, count: number): Problem[] {
  let h = 0;
  for (const ch of prefix) h = (h * 31 + ch.charCodeAt(0)) % 997;
  return Array.from({ length: count }, (_, i) => {
    const a = 10 + ((h + i * 13) % 90);
    const b = 10 + ((h * 3 + i * 7) % 90);
    return { id: `${prefix}-${i}`, prompt: `${a}+${b}=`, completion: String(a + b).split("").reverse().join("") };
  });
}

/** Saves a tiny decoder into `dir` and registers it as the promoted first version of `lineage`. */
export async function registerBase(registry: Registry, lineage: string, dir: string, seed: number): Promise<number> {
  await saveTinyDecoder(dir, seed);
  const version = await registry.allocateVersion(lineage);
  await registry.putCheckpoint(
    { lineage, version, parentVersion: 0, round: 0, status: "promoted", statusReason: "test base", files: await listCheckpointFiles(dir), manifest: {}, metrics: {}, createdAt: new Date().toISOString() },
    dir,
  );
  await registry.setPromoted(lineage, version);
  return version;
}

/**
 * Registers a promoted base whose weights hold a NaN (a poisoned checkpoint): any training step on
 * it yields a NaN loss, the divergence the trainer must abort on.
 */
export async function registerPoisonedBase(registry: Registry, lineage: string, dir: string): Promise<number> {
  const tokenizer = createTaskTokenizer(getTaskPack("addition"));
  const config = tinyDecoderConfig();
  const params = initParameters(config, 7);
  const first = Object.values(params)[0]!;
  first.data[0] = Number.NaN;
  await saveModel(dir, { config, params, tokenizer });
  const version = await registry.allocateVersion(lineage);
  await registry.putCheckpoint(
    { lineage, version, parentVersion: 0, round: 0, status: "promoted", statusReason: "poisoned test base", files: await listCheckpointFiles(dir), manifest: {}, metrics: {}, createdAt: new Date().toISOString() },
    dir,
  );
  await registry.setPromoted(lineage, version);
  return version;
}

/** Publishes the decision of one problem on `decisions.addition` with two critics' votes. */
export async function publishDecision(bus: Bus, p: Problem, accepted: boolean, msgId?: string): Promise<void> {
  const d = create(DecisionSchema, {
    sampleId: p.id,
    task: "addition",
    accepted,
    sample: { id: p.id, task: "addition", prompt: p.prompt, completion: p.completion, difficulty: p.difficulty ?? 2 },
    votes: ["critic-a", "critic-b"].map((criticId) => ({ sampleId: p.id, criticId, criticKind: "rules", approve: accepted, score: accepted ? 1 : 0, reason: accepted ? "ok" : "wrong" })),
    outcomeDetail: accepted ? "2/2 approved" : "rejected",
  });
  await bus.publish(Subjects.decisions("addition"), toBinary(DecisionSchema, d), { msgId: msgId ?? `decision-${p.id}-${accepted ? "a" : "r"}-${Math.random().toString(36).slice(2)}` });
}

/** Where the trainer writes the mix log of one lineage in one round. */
export function mixLogPath(dataDir: string, round: number, lineage: string): string {
  return join(dataDir, "mix", `round-${round}-${lineage}.jsonl`);
}

/** One line of a mix log: which accepted samples and which anchor examples formed a batch. */
export interface MixLogLine {
  batch: number;
  sampleIds: string[];
  anchorIds: string[];
}

/** Parses a mix log (JSONL). */
export function parseMixLog(text: string): MixLogLine[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as MixLogLine);
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The manifest's sample-id digest rule: sha256 of the sorted ids joined by newlines. */
export function idsDigest(ids: Iterable<string>): string {
  return createHash("sha256").update([...ids].sort().join("\n")).digest("hex");
}
