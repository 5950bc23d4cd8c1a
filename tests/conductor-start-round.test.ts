// StartRound is idempotent per (lineage, round), what a conductor that crashed and retries relies on:
// a repeat of a finished round gives its report again (no second candidate); a repeat of a running
// round whose first caller went away (stream cancelled) follows the round, which kept going; a
// different request for the same round is refused; a round that failed is redone by its repeat.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { TrainerService, type RoundEvent } from "../src/gen/autodidact/v1/trainer_pb.js";
import { startServiceWithArgs, type RunningService } from "../src/platform/host/index.js";
import { createRegistry, type Registry } from "../src/domain/registry/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { trainerService } from "../services/trainer/index.js";
import { problems, publishDecision, registerBase, registerPoisonedBase, waitFor } from "./trainer-support.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";

interface JournalLine {
  kind: string;
  round?: number;
  plan?: { round: number; lineages: string[] };
  status?: string;
}

describe("StartRound, idempotent per (lineage, round)", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let dir: string;
  let dataDir: string;
  let registry: Registry;
  let trainer: RunningService;
  let client: ReturnType<typeof createClient<typeof TrainerService>>;

  const journal = async (): Promise<JournalLine[]> =>
    (await readFile(join(dataDir, "rounds.jsonl"), "utf8"))
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as JournalLine);
  const starts = async (round: number, lineage: string): Promise<number> =>
    (await journal()).filter((e) => e.kind === "start" && e.plan?.round === round && e.plan.lineages.includes(lineage)).length;
  const drain = async (req: Parameters<typeof client.startRound>[0], signal?: AbortSignal): Promise<{ events: RoundEvent[]; error?: AutodidactError }> => {
    const events: RoundEvent[] = [];
    try {
      for await (const e of client.startRound(req, signal ? { signal } : {})) events.push(e);
      return { events };
    } catch (err) {
      return { events, error: err as AutodidactError };
    }
  };
  const reportOf = (events: RoundEvent[]) => {
    const last = events[events.length - 1];
    if (last?.event.case !== "report") throw new Error(`no report: ${JSON.stringify(events.map((e) => e.event.case))}`);
    return last.event.value;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "start-round-test" });
    await ensureMeshTopology(bus);
    dir = await mkdtemp(join(tmpdir(), "start-round-"));
    dataDir = join(dir, "data");
    registry = createRegistry(bus, { cacheDir: join(dir, "cache") });
    await registerBase(registry, "main", join(dir, "base"), 1);
    for (const p of problems("acc", 8)) await publishDecision(bus, p, true);
    trainer = await startServiceWithArgs(trainerService, [
      "--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn", "--data-dir", dataDir, "--lineages", "main,poisoned",
      "--batch-size", "4", "--max-reuse", "1000",
    ]);
    client = createClient(TrainerService, trainer.server.address, { deadlineMs: 120_000 });
    const info = await client.getInfo({});
    expect(info.attributes["durable"]).toBe("trainer");
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await trainer?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a repeat of a finished round returns its report; no second candidate, one journal start", async () => {
    const req = { round: 3, lineage: "main", task: "addition", training: { steps: 3n } };
    const first = reportOf((await drain(req)).events);
    expect(first.candidateVersion).toBe(2n);
    const again = await drain(req);
    expect(again.error).toBeUndefined();
    expect(again.events).toHaveLength(1);
    const second = reportOf(again.events);
    expect(second.candidateVersion).toBe(2n);
    expect(second.round).toBe(3);
    expect(second.candidate?.digest).toBe(first.candidate?.digest);
    expect((await registry.listCheckpoints("main")).map((r) => r.version)).toEqual([1, 2]);
    expect(await starts(3, "main")).toBe(1);
    // Another request for the same round and lineage is another round: refused.
    const other = await drain({ ...req, training: { steps: 4n } });
    expect(other.error?.code).toBe(Code.AlreadyExists);
    expect(other.error?.message).toMatch(/round 3 of main already exists with another steps \(3, asked 4\)/);
  }, 60_000);

  it("a caller that goes away mid-round does not stop it; its repeat follows the same round to its report", async () => {
    const req = { round: 4, lineage: "main", task: "addition", training: { steps: 300n } };
    const gone = new AbortController();
    const firstEvents: RoundEvent[] = [];
    const first = (async () => {
      try {
        for await (const e of client.startRound(req, { signal: gone.signal })) {
          firstEvents.push(e);
          if (e.event.case === "progress" && e.event.value.phase === "train" && e.event.value.step >= 5n) gone.abort();
        }
      } catch (err) {
        return err as AutodidactError;
      }
      return undefined;
    })();
    expect((await first)?.code).toBe(Code.Canceled);
    const repeat = await drain(req);
    expect(repeat.error).toBeUndefined();
    // It attached to the running round: progress continues past where the first caller left.
    const steps = repeat.events.flatMap((e) => (e.event.case === "progress" && e.event.value.phase === "train" ? [Number(e.event.value.step)] : []));
    expect(steps.length).toBeGreaterThan(0);
    expect(steps[0]).toBeGreaterThanOrEqual(5);
    expect(steps[steps.length - 1]).toBe(300);
    expect(reportOf(repeat.events).candidateVersion).toBe(3n);
    expect((await registry.listCheckpoints("main")).filter((r) => r.round === 4)).toHaveLength(1);
    expect(await starts(4, "main")).toBe(1);
  }, 120_000);

  it("a round that failed is redone by its repeat (and fails again the same way here)", async () => {
    await registerPoisonedBase(registry, "poisoned", join(dir, "poisoned"));
    const req = { round: 4, lineage: "poisoned", task: "addition", training: { steps: 2n } };
    // Round 4 of another lineage: a round of its own.
    const first = await drain(req);
    expect(first.error?.code).toBe(Code.Aborted);
    const again = await drain(req);
    expect(again.error?.code).toBe(Code.Aborted);
    const lines = (await journal()).filter((e) => e.round === 4 || e.plan?.round === 4);
    expect(lines.map((e) => e.kind)).toEqual(["start", "allocated", "candidate", "end", "start", "end", "resume", "end"]);
    await waitFor(async () => (await starts(4, "poisoned")) === 1, 1_000, "one start of round 4 for poisoned");
  }, 60_000);
});
