// Helpers of the monitor and dashboard tests: tiny decoders registered as checkpoints, a monitor service in-process.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Bus } from "../src/platform/bus/index.js";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { initParameters, saveModel } from "../src/engine/index.js";
import { CheckpointRefSchema } from "../src/gen/autodidact/v1/checkpoint_pb.js";
import { startService, type RunningService, type ServiceConfig } from "../src/platform/host/index.js";
import { listCheckpointFiles, type CheckpointRecord, type Registry } from "../src/domain/registry/index.js";
import { tinyDecoderConfig } from "../src/domain/serving/test-models.js";
import { createTaskTokenizer, getTaskPack } from "../src/domain/tasks/index.js";
import { monitorOptions, monitorService } from "../services/monitor/index.js";
import { Subjects } from "../src/domain/topology/index.js";

/**
 * Saves a tiny random decoder; `collapsed` multiplies its output projection by 200, which makes every
 * answer near-certain and the same few tokens: a model in late collapse (confidently wrong, bland).
 */
export async function saveTestDecoder(dir: string, seed: number, collapsed = false): Promise<void> {
  const config = tinyDecoderConfig();
  const params = initParameters(config, seed);
  if (collapsed) {
    const head = params["lm_head.weight"]!;
    for (let i = 0; i < head.data.length; i++) head.data[i] = (head.data[i] as number) * 200;
  }
  await saveModel(dir, { config, params, tokenizer: createTaskTokenizer(getTaskPack("addition")) });
}

/** Registers a tiny decoder as the next candidate of `lineage`, with a trainer-like manifest. */
export async function registerCandidate(
  registry: Registry,
  work: string,
  o: { lineage: string; seed: number; parentVersion: number; round: number; collapsed?: boolean; manifest?: Record<string, unknown> },
): Promise<CheckpointRecord> {
  const dir = await mkdtemp(join(work, `ckpt-${o.seed}-`));
  await saveTestDecoder(dir, o.seed, o.collapsed);
  const version = await registry.allocateVersion(o.lineage);
  const record: CheckpointRecord = {
    lineage: o.lineage,
    version,
    parentVersion: o.parentVersion,
    round: o.round,
    status: "candidate",
    statusReason: "",
    files: await listCheckpointFiles(dir),
    manifest: {
      task: "addition",
      sampleIdsDigest: `digest-of-round-${o.round}-v${version}`,
      sampleCount: 100 + o.round,
      mix: { syntheticCount: 80, realCount: 20 + o.round },
      rounds: [o.round],
      ...o.manifest,
    },
    metrics: {},
    createdAt: new Date().toISOString(),
  };
  await registry.putCheckpoint(record, dir);
  return record;
}

/** Announces a candidate as the trainer does. */
export async function announceCandidate(bus: Bus, record: CheckpointRecord): Promise<void> {
  const ref = create(CheckpointRefSchema, { lineage: record.lineage, version: BigInt(record.version), parentVersion: BigInt(record.parentVersion), round: record.round, task: "addition" });
  await bus.publish(Subjects.checkpoints("candidate"), toBinary(CheckpointRefSchema, ref), { msgId: `candidate-${record.lineage}-${record.version}` });
}

/** Starts the monitor service in-process against `natsUrl`. */
export async function startMonitor(natsUrl: string, work: string, extra: string[] = []): Promise<RunningService> {
  const parsed = defineOptions({ ...serviceOptions, ...monitorOptions }).parse(
    ["--nats-url", natsUrl, "--grpc-host", "127.0.0.1", "--cache-dir", join(work, "monitor-cache"), "--eval-limit", "6", "--log-level", "warn", ...extra],
    {},
  );
  return startService(monitorService, parsed.values as unknown as ServiceConfig<typeof monitorOptions>);
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export { tmpdir };
