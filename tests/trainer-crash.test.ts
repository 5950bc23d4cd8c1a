// The trainer as a real process: an automatic round over two lineages (each from its own promoted
// parent with its own seed) is SIGKILLed mid-round; after a restart the round is redone and yields
// exactly one candidate per lineage (no duplicate version, one candidate event each), and no accepted
// sample is lost (including decisions published while the trainer was down).
import { fromBinary } from "@bufbuild/protobuf";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, consumerLag, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { CheckpointRefSchema, type CheckpointRef } from "../src/gen/autodidact/v1/checkpoint_pb.js";
import { createRegistry, type Registry } from "../src/domain/registry/index.js";
import { idsDigest, problems, publishDecision, registerBase, waitFor } from "./trainer-support.js";
import { ensureMeshTopology, Streams, Subjects } from "../src/domain/topology/index.js";

const TSX = fileURLToPath(import.meta.resolve("tsx"));
const MAIN = fileURLToPath(new URL("../services/trainer/main.ts", import.meta.url));

function startTrainer(natsUrl: string, dataDir: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", TSX, MAIN, "--nats-url", natsUrl, "--grpc-host", "127.0.0.1", "--log-level", "warn", "--data-dir", dataDir,
      "--lineages", "gen,crit", "--round-min-samples", "12", "--steps", "400", "--batch-size", "8", "--max-reuse", "1000", "--lr", "0.001"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error("trainer not ready")), 60_000);
    lines.on("line", (line) => {
      if (!line.startsWith('{"event":"ready"')) return;
      clearTimeout(timer);
      resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`trainer exited with ${code} before ready`)));
  });
}

function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

const journalLines = async (dataDir: string): Promise<{ kind: string; round?: number; plan?: { round: number }; status?: string }[]> => {
  try {
    return (await readFile(join(dataDir, "rounds.jsonl"), "utf8"))
      .split("\n")
      .filter((l) => l.trim() !== "")
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as { kind: string }];
        } catch {
          return [];
        }
      });
  } catch {
    return [];
  }
};

describe("trainer crash safety", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  let registry: Registry;
  let child: ChildProcess | undefined;
  const events: CheckpointRef[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "trainer-crash-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "trainer-crash-"));
    registry = createRegistry(bus, { cacheDir: join(dir, "test-cache") });
    expect(await registerBase(registry, "gen", join(dir, "base-gen"), 1)).toBe(1);
    expect(await registerBase(registry, "crit", join(dir, "base-crit"), 2)).toBe(1);
    await consume(bus, { stream: Streams.Checkpoints, durable: "test-candidates", filterSubject: Subjects.checkpoints("candidate") }, async (m) => {
      events.push(fromBinary(CheckpointRefSchema, m.data));
    });
  }, 60_000);

  afterAll(async () => {
    if (child) await kill(child, "SIGKILL");
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("SIGKILL mid-round, then restart: exactly one candidate per lineage for that round, no accepted sample lost", async () => {
    const dataDir = join(dir, "data");
    const first = problems("first", 12);
    const downtime = problems("down", 4);
    const rejected = problems("rej", 3);
    for (const [i, p] of first.entries()) {
      await publishDecision(bus, p, true);
      if (i < rejected.length) await publishDecision(bus, rejected[i]!, false);
    }
    child = await startTrainer(nats.url, dataDir);
    // The 12th accepted sample starts round 1 automatically; kill as soon as it is journaled.
    await waitFor(async () => (await journalLines(dataDir)).some((e) => e.kind === "start"), 60_000, "round 1 to start");
    await kill(child, "SIGKILL");
    child = undefined;
    const atKill = (await registry.listCheckpoints()).filter((r) => r.round === 1);
    expect(atKill.length).toBeLessThan(2); // the kill landed mid-round: not every lineage had its candidate
    expect((await journalLines(dataDir)).some((e) => e.kind === "end")).toBe(false);

    for (const p of downtime) await publishDecision(bus, p, true);
    child = await startTrainer(nats.url, dataDir);
    await waitFor(async () => (await journalLines(dataDir)).some((e) => e.kind === "end" && e.round === 1), 120_000, "round 1 to finish after restart");
    await waitFor(async () => (await consumerLag(bus, Streams.Decisions, "trainer")).total === 0, 20_000, "intake to drain");

    const round1 = (await registry.listCheckpoints()).filter((r) => r.round === 1);
    expect(round1.map((r) => `${r.lineage}@${r.version}`).sort()).toEqual(["crit@2", "gen@2"]);
    const end = (await journalLines(dataDir)).filter((e) => e.kind === "end");
    expect(end).toEqual([{ kind: "end", round: 1, lineages: ["gen", "crit"], status: "done", reason: "" }]);
    for (const r of round1) {
      const m = r.manifest as { parentVersion: number; sampleIdsDigest: string; hyperparameters: Record<string, string>; lossCurve: unknown[] };
      expect(r.parentVersion).toBe(1);
      expect(m.sampleIdsDigest).toBe(idsDigest(first.map((p) => p.id)));
      expect(m.lossCurve.length).toBe(400);
    }
    // Each lineage trained with its own seed.
    const seeds = round1.map((r) => (r.manifest as { hyperparameters: Record<string, string> }).hyperparameters.seed);
    expect(new Set(seeds).size).toBe(2);
    // One candidate event per lineage (msgId `<lineage>@<version>` deduplicates a re-publish).
    await waitFor(() => events.filter((e) => e.round === 1).length >= 2, 10_000, "candidate events");
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((e) => e.round === 1).map((e) => `${e.lineage}@${e.version}`).sort()).toEqual(["crit@2", "gen@2"]);

    // Every accepted sample is in the training set (once), no rejected one.
    const stored = (await readFile(join(dataDir, "training-set.jsonl"), "utf8"))
      .split("\n")
      .filter((l) => l.trim() !== "")
      .flatMap((l) => {
        try {
          return [(JSON.parse(l) as { sampleId: string }).sampleId];
        } catch {
          return [];
        }
      });
    expect(stored.sort()).toEqual([...first, ...downtime].map((p) => p.id).sort());
  }, 240_000);

  it("SIGKILL right after a version was allocated: the restart reuses it (one candidate, no duplicate, no gap)", async () => {
    const dataDir = join(dir, "data");
    // 16 accepted so far, round 1 used 12: 8 more make 12 new ones and start round 2.
    const more = problems("more", 8);
    for (const p of more) await publishDecision(bus, p, true);
    await waitFor(async () => (await journalLines(dataDir)).some((e) => e.kind === "allocated" && e.round === 2), 120_000, "round 2 to allocate a version");
    await kill(child!, "SIGKILL");
    child = undefined;
    expect((await journalLines(dataDir)).some((e) => e.kind === "end" && e.round === 2)).toBe(false);

    child = await startTrainer(nats.url, dataDir);
    await waitFor(async () => (await journalLines(dataDir)).some((e) => e.kind === "end" && e.round === 2), 120_000, "round 2 to finish after restart");
    const round2 = (await registry.listCheckpoints()).filter((r) => r.round === 2);
    expect(round2.map((r) => `${r.lineage}@${r.version}`).sort()).toEqual(["crit@3", "gen@3"]);
    for (const lineage of ["gen", "crit"]) {
      expect((await registry.listCheckpoints(lineage)).map((r) => r.version)).toEqual([1, 2, 3]);
    }
    const m = round2[0]!.manifest as { sampleIdsDigest: string; mix: { trainingSetSlice: number[] } };
    expect(m.mix.trainingSetSlice).toEqual([0, 24]); // accumulate: every accepted sample so far
    await waitFor(() => events.filter((e) => e.round === 2).length >= 2, 10_000, "candidate events");
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((e) => e.round === 2).map((e) => `${e.lineage}@${e.version}`).sort()).toEqual(["crit@3", "gen@3"]);
  }, 240_000);
});
