import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import type { OptionSpecs } from "../src/platform/config/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import { startServiceWithArgs, type RunningService, type ServiceSpec } from "../src/platform/host/index.js";
import { createRegistry, type Registry } from "../src/domain/registry/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { criticService } from "../services/critic/index.js";
import { generatorService } from "../services/generator/index.js";
import { announceCandidate, registerCandidate, startMonitor, tmpdir, waitFor } from "./monitor-support.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";

describe("a promotion, a rejection and a rollback reach the generator and every critic", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let registry: Registry;
  const running: RunningService[] = [];
  let monitor: RunningService;

  const start = async <T extends OptionSpecs>(spec: ServiceSpec<T>, args: string[]): Promise<RunningService> => {
    const s = await startServiceWithArgs(spec, ["--nats-url", nats.url, "--grpc-host", "127.0.0.1", "--log-level", "warn", ...args]);
    running.push(s);
    return s;
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "reach-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "reach-"));
    registry = createRegistry(bus, { cacheDir: join(work, "cache") });
    monitor = await startMonitor(nats.url, work, ["--eval-max-difficulty", "2", "--dashboard-port", "-1"]);
    const v1 = await registerCandidate(registry, work, { lineage: "main", seed: 1, parentVersion: 0, round: 0 });
    await announceCandidate(bus, v1);
    await waitFor(async () => ((await registry.getPromoted("main"))?.version === 1 ? true : undefined), 60_000, "v1 promoted");
    await start(generatorService, ["--cache-dir", join(work, "gen-cache")]);
    for (const id of ["lk-a", "lk-b"]) {
      await start(criticService, ["--kind", "likelihood", "--threshold", "-100", "--follow-promoted", "--critic-id", id, "--cache-dir", join(work, `${id}-cache`)]);
    }
  }, 90_000);

  afterAll(async () => {
    for (const s of running.reverse()) await s.stop();
    await monitor?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const served = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const s of running) {
      const svc = s.name === "generator" ? GeneratorService : CriticService;
      const c = createClient(svc, s.server.address) as unknown as { getInfo(r: object): Promise<{ models: { version: string }[] }>; close(): void };
      try {
        out.push((await c.getInfo({})).models.map((m) => m.version).join(","));
      } finally {
        c.close();
      }
    }
    return out;
  };
  const allServe = (version: string) => waitFor(async () => ((await served()).every((v) => v === version) ? true : undefined), 30_000, `all serving ${version}`);

  it("serves v1, then v2 after its promotion, still v2 after a rejected v3, and v1 again after Rollback", async () => {
    await allServe("main@1");
    const v2 = await registerCandidate(registry, work, { lineage: "main", seed: 2, parentVersion: 1, round: 1 });
    await announceCandidate(bus, v2);
    await allServe("main@2");

    const v3 = await registerCandidate(registry, work, { lineage: "main", seed: 5, parentVersion: 2, round: 2, collapsed: true });
    await announceCandidate(bus, v3);
    await waitFor(async () => ((await registry.getCheckpoint("main", v3.version))?.status === "rejected" ? true : undefined), 60_000, "v3 rejected");
    expect(await served()).toEqual(["main@2", "main@2", "main@2"]);

    const client = createClient(MonitorService, monitor.server.address);
    try {
      await client.rollback({ lineage: "main", toVersion: 1n, reason: "test" });
    } finally {
      client.close();
    }
    await allServe("main@1");
  }, 120_000);
});
