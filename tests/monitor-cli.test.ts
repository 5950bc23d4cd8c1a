import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { main } from "../apps/cli/main.js";
import { monitorCommand } from "../apps/cli/monitor-commands.js";
import type { RunningService } from "../src/platform/host/index.js";
import { createRegistry, type Registry } from "../src/domain/registry/index.js";
import { announceCandidate, registerCandidate, startMonitor, tmpdir, waitFor } from "./monitor-support.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";

describe("autodidact history / lineage / rollback", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let registry: Registry;
  let service: RunningService;
  let address: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "monitor-cli-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "monitor-cli-"));
    registry = createRegistry(bus, { cacheDir: join(work, "cache") });
    service = await startMonitor(nats.url, work, ["--eval-max-difficulty", "2", "--dashboard-port", "-1"]);
    address = service.server.address;
    let parent = 0;
    for (const [round, seed] of [[0, 1], [1, 2]] as const) {
      const r = await registerCandidate(registry, work, { lineage: "main", seed, parentVersion: parent, round, manifest: { criticVotes: { approve: 7, reject: 3 } } });
      await announceCandidate(bus, r);
      await waitFor(async () => ((await registry.getCheckpoint("main", r.version))?.status === "promoted" ? true : undefined), 60_000, `v${r.version} promoted`);
      parent = r.version;
    }
  }, 90_000);

  afterAll(async () => {
    await service?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const run = async (command: "history" | "lineage" | "rollback", args: string[]): Promise<{ code: number; out: string }> => {
    let out = "";
    const code = await monitorCommand(command, ["--monitor", address, ...args], (s) => (out += s));
    return { code, out };
  };

  it("history prints every version with its status, lineage the rounds and sample-id digests, rollback moves serving back", async () => {
    const h = await run("history", ["--json"]);
    expect(h.code).toBe(0);
    const parsed = JSON.parse(h.out) as { promotedVersion: number; checkpoints: { version: number; status: string }[] };
    expect(parsed.promotedVersion).toBe(2);
    expect(parsed.checkpoints.map((c) => [c.version, c.status])).toEqual([[2, "promoted"], [1, "promoted"]]);

    const lin = await run("lineage", ["2"]);
    expect(lin.code).toBe(0);
    expect(lin.out).toMatch(/v1\s+\|?\s*0/);
    expect(lin.out).toContain("digest-of-round-0");
    expect(lin.out).toContain("digest-of-round-1");
    expect(lin.out).toContain("approve=7");

    const rb = await run("rollback", ["1", "--reason", "cli test"]);
    expect(rb.code).toBe(0);
    expect(rb.out).toContain("v2 -> v1");
    expect((await registry.getPromoted("main"))?.version).toBe(1);
    expect((await registry.getCheckpoint("main", 2))?.statusReason).toContain("cli test");
    const table = await run("history", []);
    expect(table.out).toMatch(/rolled_back/);
  }, 60_000);

  it("bad usage exits 2 with a message; the monitor keeps serving", async () => {
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (errors.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["lineage", "--monitor", address])).toBe(2);
      expect(await main(["lineage", "abc", "--monitor", address])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(errors.join("")).toMatch(/usage: autodidact lineage <version>/);
    expect((await run("history", ["--json"])).code).toBe(0);
  });
});
