import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import type { DashboardState } from "../services/monitor/dashboard/index.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import type { RunningService } from "../src/platform/host/index.js";
import { createRegistry, type CheckpointRecord, type Registry } from "../src/domain/registry/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { getTaskPack } from "../src/domain/tasks/index.js";
import { announceCandidate, registerCandidate, startMonitor, tmpdir, waitFor } from "./monitor-support.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";

const L = "main";
const CHROMIUM = "/usr/bin/chromium";
/** Where the screenshot is kept for people to look at. */
const SHOT = join(tmpdir(), "autodidact-dashboard", "dashboard.png");

/** A trainer-like manifest: round counts, critic votes, and the samples it trained on (some labels wrong). */
function manifestFor(round: number, wrong: number): Record<string, unknown> {
  const pack = getTaskPack("addition");
  const examples = pack.createAnchorSource({ seed: `dash-${round}`, minDifficulty: 1, maxDifficulty: 3 }).take(10);
  const samples = examples.map((e, i) => ({ prompt: e.prompt, completion: i < wrong ? `${e.answer}1` : e.answer }));
  const proposed = [...samples, ...examples.map((e) => ({ prompt: e.prompt, completion: "0" }))];
  return {
    samplesProposed: 40 + round * 10,
    samplesAccepted: 20 + round * 8,
    criticVotes: { approve: 30, reject: 10, agreement: 0.6 + round * 0.1 },
    samples,
    proposedSamples: proposed,
    lossCurve: [{ step: 1, loss: 3 - round * 0.5 }, { step: 2, loss: 2.5 - round * 0.5 }],
  };
}

describe("dashboard in headless Chromium", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let registry: Registry;
  let service: RunningService;
  let browser: BrowserContext;
  let url: string;
  const records: CheckpointRecord[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "dashboard-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "dashboard-test-"));
    registry = createRegistry(bus, { cacheDir: join(work, "test-cache") });
    service = await startMonitor(nats.url, work, ["--eval-max-difficulty", "3", "--dashboard-port", "0"]);
    const client = createClient(MonitorService, service.server.address);
    url = (await client.getInfo({})).attributes.dashboardUrl ?? "";
    client.close();
    // Three rounds: a base, a healthy candidate, a collapsed one (rejected).
    for (const [round, seed, collapsed] of [[0, 1, false], [1, 2, false], [2, 5, true]] as const) {
      const parent = records.filter((r) => r.version > 0).at(-1)?.version ?? 0;
      const r = await registerCandidate(registry, work, { lineage: L, seed, parentVersion: round === 2 ? 2 : parent, round, collapsed, manifest: manifestFor(round, round) });
      records.push(r);
      await announceCandidate(bus, r);
      await waitFor(async () => ((await registry.getCheckpoint(L, r.version))?.status !== "candidate" ? true : undefined), 60_000, `v${r.version} judged`);
    }
    // A new, empty profile each run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(await mkdtemp(join(work, "chromium-profile-")), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1300 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    await bus?.close();
    await nats?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("serves plots drawn from the real evaluations, the history with statuses and the lineage, and updates live", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const state = (await (await fetch(new URL("api/state", url))).json()) as DashboardState;
    const statuses = Object.fromEntries(state.checkpoints.map((c) => [c.record.version, c.record.status]));
    expect(statuses).toEqual({ 1: "promoted", 2: "promoted", 3: "rejected" });

    const page = await browser.newPage();
    await page.goto(url);
    for (const id of ["accuracy", "frontier", "loss", "acceptance", "labels", "agreement", "diversity", "alarms"]) {
      expect(await page.locator(`svg[data-plot="${id}"]`).count(), id).toBe(1);
    }
    // The overall-accuracy points are exactly the stored evaluations' accuracies, one per round.
    const overall = await page.locator('svg[data-plot="accuracy"] circle[data-series="overall"]').evaluateAll((els) => els.map((e) => [Number(e.getAttribute("data-x")), Number(e.getAttribute("data-y"))]));
    const expected = state.checkpoints.map((c) => [c.record.round, c.evaluation!.accuracy]).sort((a, b) => a[0]! - b[0]!);
    expect(overall).toEqual(expected);
    // Label accuracy of accepted samples: round r had r wrong labels out of 10 (measured by the verifier).
    const labels = await page.locator('svg[data-plot="labels"] circle[data-series="accepted"]').evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-y"))));
    expect(labels).toEqual([1, 0.9, 0.8]);
    const proposed = await page.locator('svg[data-plot="labels"] circle[data-series="proposed"]').evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-y"))));
    expect(proposed.every((p, i) => p < labels[i]!)).toBe(true);
    const acceptance = await page.locator('svg[data-plot="acceptance"] circle').evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-y"))));
    expect(acceptance).toEqual([20 / 40, 28 / 50, 36 / 60]);
    // The collapsed round raised alarms.
    const critical = await page.locator('svg[data-plot="alarms"] circle[data-series="critical"]').evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-y"))));
    expect(critical[2]).toBeGreaterThan(0);
    expect(await page.locator('#history tr[data-version="3"]').getAttribute("data-status")).toBe("rejected");
    expect(await page.locator("#lineage li").evaluateAll((els) => els.map((e) => e.getAttribute("data-version")))).toEqual(["1", "2"]);
    expect(await page.locator("#lineage").textContent()).toContain("digest-of-round-1-v2".slice(0, 16));

    await mkdir(join(tmpdir(), "autodidact-dashboard"), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    expect((await stat(SHOT)).size).toBeGreaterThan(10_000);

    // A new round arrives while the page is open: it shows up without a reload.
    const r4 = await registerCandidate(registry, work, { lineage: L, seed: 4, parentVersion: 2, round: 3, manifest: manifestFor(3, 0) });
    await announceCandidate(bus, r4);
    await page.locator(`#history tr[data-version="${r4.version}"]`).waitFor({ timeout: 60_000 });
    await page.waitForFunction(`document.querySelectorAll('svg[data-plot="accuracy"] circle[data-series="overall"]').length === 4`, undefined, { timeout: 60_000 });
    await page.close();
  }, 120_000);
});
