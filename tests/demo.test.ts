// `autodidact demo --quick --all` as a user runs it: a real nats-server and every service as its own
// process, then the report checked against what the services recorded (decisions stream, registry,
// the monitor's evaluations and round statistics), read back from each run's NATS store.
import { spawn } from "node:child_process";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { readDecisions } from "../services/consensus/test-support.js";
import { frontierOf } from "../apps/experiment/index.js";
import { createRegistry, openMonitorRecords } from "../src/domain/registry/index.js";
import type { DemoReport, DemoRun } from "../apps/report/types.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));
const ROUNDS = 2;
const SAMPLES = 48;

describe("autodidact demo --quick --all", () => {
  let outDir = "";
  let nats: NatsServerProcess | undefined;
  let bus: Bus | undefined;

  afterAll(async () => {
    await bus?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("runs the default and both ablations through the mesh and writes a report whose every number the services recorded", async () => {
    outDir = await mkdtemp(join(tmpdir(), "autodidact-demo-"));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NATS_URL;
    const child = spawn(process.execPath, [cli, "demo", "--quick", "--all", "--rounds", String(ROUNDS), "--samples", String(SAMPLES), "--set", "round.steps=40", "--out", outDir, "--no-keep-open"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code, `${out}\n${err}`).toBe(0);

    // What the user sees: a table per run with a row per round, the report's path.
    for (const name of ["default", "no-consensus", "replace"]) expect(out).toContain(`== run: ${name}`);
    expect(out).toMatch(/round\s+len\s+proposed\s+accepted/);
    // Each run's decision audit (a core subscription: it sees a second decision of a sample that
    // the stream would drop as a duplicate): one decision per proposed sample, none twice.
    const audits = [...out.matchAll(/decisions published: (\d+) samples, (\d+) decided more than once/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(audits).toEqual(["default", "no-consensus", "replace"].map(() => [ROUNDS * SAMPLES, 0]));

    const report = JSON.parse(await readFile(join(outDir, "report.json"), "utf8")) as DemoReport;
    expect(report.format).toBe("autodidact.demo-report/1");
    expect(report.runs.map((r) => r.name)).toEqual(["default", "no-consensus", "replace"]);
    const byName = new Map(report.runs.map((r) => [r.name, r]));

    for (const run of report.runs) {
      expect(run.rounds.map((r) => r.round)).toEqual(Array.from({ length: ROUNDS }, (_, i) => i + 1));
      await checkRunAgainstRecords(run, report);
      // Each round's phases account for its seconds, and training took time whenever there was data.
      for (const r of run.rounds) {
        const p = r.phaseSeconds!;
        const phases = [p.serve, p.propose, p.judge, p.train, p.gate];
        expect(phases.every((x) => x >= 0)).toBe(true);
        expect(Math.abs(phases.reduce((a, b) => a + b, 0) - r.seconds)).toBeLessThan(0.05);
        if (r.poolSize > 0) expect(p.train).toBeGreaterThan(0);
      }
    }
    // The ablation accepts everything it is given; the default's consensus does not.
    const noConsensus = byName.get("no-consensus")!;
    for (const r of noConsensus.rounds) expect(r.accepted).toBe(r.proposed);
    const def = byName.get("default")!;
    expect(def.rounds.every((r) => r.accepted <= r.proposed)).toBe(true);
    expect(def.rounds.some((r) => r.accepted < r.proposed)).toBe(true);

    // The report's files: HTML with every run, one PNG per figure.
    expect(out).toContain(`report: ${join(outDir, "report.html")}`);
    const html = await readFile(join(outDir, "report.html"), "utf8");
    for (const name of ["default", "no-consensus", "replace"]) expect(html).toContain(name);
    const figures = (report as DemoReport & { figures?: { id: string }[] }).figures ?? [];
    expect(figures.length).toBeGreaterThan(0);
    for (const f of figures) await access(join(outDir, "figures", `${f.id}.png`));
  }, 900_000);

  /** Reopens a run's NATS store and compares the run's numbers with the services' records. */
  async function checkRunAgainstRecords(run: DemoRun, report: DemoReport): Promise<void> {
    await bus?.close();
    await nats?.stop();
    nats = await startNatsServer({ storeDir: join(run.stateDir, "nats") });
    bus = await connectBus({ servers: nats.url, name: "demo-test" });
    // Every decision of the task on the stream (the run is over: nothing more to wait for).
    const decisions = await readDecisions(bus, report.task, 0);
    // The monitor's records, read back through the registry (their owner) from the stopped run's store.
    const records = openMonitorRecords<{ lineage: string; version: number; perDifficulty: { difficulty: number; accuracy: number }[] }, { version: number }>(bus);
    const registry = createRegistry(bus, { cacheDir: join(outDir, "test-cache") });

    const ids = decisions.map((d) => d.sampleId);
    expect(new Set(ids).size, "a sample decided twice").toBe(ids.length);
    for (const row of run.rounds) {
      const mine = decisions.filter((d) => d.sample?.round === row.round);
      expect(mine.length, `${run.name} round ${row.round} decisions`).toBe(row.proposed);
      expect(row.proposed).toBe(SAMPLES);
      expect(mine.filter((d) => d.accepted).length).toBe(row.accepted);
      for (const d of mine) expect(d.sample?.difficulty).toBe(row.labelLength);
      // Every decision keeps its votes: an acceptance needs the two vetoes plus a model critic; a veto alone may reject.
      for (const d of mine) expect(d.votes.length, `votes of ${d.sampleId}`).toBeGreaterThanOrEqual(run.consensus && d.accepted ? 3 : 1);

      const stats = (await records.getRoundStats(report.task, row.round))!;
      expect(stats.proposed).toBe(row.proposed);
      expect(stats.accepted).toBe(row.accepted);
      expect(row.proposedLabelAccuracy).toBeCloseTo(stats.correctProposed / stats.proposed, 12);
      if (row.accepted > 0) expect(row.acceptedLabelAccuracy).toBeCloseTo(stats.correctAccepted / stats.accepted, 12);

      for (const l of row.lineages) {
        if (l.candidateVersion === 0) continue;
        const record = (await registry.getCheckpoint(l.lineage, l.candidateVersion))!;
        expect(record.round).toBe(row.round);
        expect(record.status === "promoted" || record.status === "rejected").toBe(true);
        expect(l.status).toBe(record.status);
        const stored = (await records.getEvaluation(l.lineage, l.candidateVersion))!;
        expect(l.accuracyByLength).toEqual(stored.perDifficulty.map((d) => ({ length: d.difficulty, accuracy: d.accuracy })).sort((a, b) => a.length - b.length));
        expect(l.frontier).toBe(frontierOf(l.accuracyByLength, report.frontierThreshold, report.frontierFrom));
        // Real anchor data stays at the base lengths: longer lengths come from self-made labels only.
        const mix = record.manifest["mix"] as { realByDifficulty: Record<string, number> };
        const baseDigits = (report.config as { recipe: { baseDigits: number } }).recipe.baseDigits;
        expect(Math.max(...Object.keys(mix.realByDifficulty).map(Number))).toBeLessThanOrEqual(baseDigits);
      }
      // The row's accuracy is the generator lineage's promoted model after the round.
      const gen = row.lineages[0]!;
      const promoted = await registry.getPromoted(gen.lineage);
      if (row.round === run.rounds.length) expect(promoted?.version).toBe(gen.promotedVersion);
      const evalOfPromoted = (await records.getEvaluation(gen.lineage, gen.promotedVersion))!;
      expect(row.accuracyByLength.map((a) => a.accuracy)).toEqual(evalOfPromoted.perDifficulty.sort((a, b) => a.difficulty - b.difficulty).map((d) => d.accuracy));
      expect(row.frontier).toBe(frontierOf(row.accuracyByLength, report.frontierThreshold, report.frontierFrom));
    }
  }
});
