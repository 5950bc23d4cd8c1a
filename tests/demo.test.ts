// `autodidact demo --quick` as a user runs it: a real nats-server and every service as its own process,
// the loop run by the conductor (the demo only submits the run spec and follows the round events), then
// the report checked against what the services recorded (the conductor's run, the decisions stream, the
// registry, the monitor's evaluations and round statistics), read back from the run's NATS store.
import { fromBinary } from "@bufbuild/protobuf";
import { spawn } from "node:child_process";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { connectBus, openKv, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { readDecisions } from "../services/consensus/test-support.js";
import { frontierOf } from "../apps/experiment/index.js";
import { createRegistry, openMonitorRecords } from "../src/domain/registry/index.js";
import { RunEventSchema, RunStatus } from "../src/gen/autodidact/v1/conductor_pb.js";
import { Streams } from "../src/domain/topology/index.js";
import { readStream } from "../bench/chaos/streams.js";
import type { DemoReport, DemoRun } from "../apps/report/types.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));
const ROUNDS = 2;
const SAMPLES = 48;
const SEED = 3;
const RUN_ID = `demo-default-s${SEED}`;

type StoredEval = { lineage: string; version: number; test?: { perDifficulty: { difficulty: number; accuracy: number }[] } };

describe("autodidact demo --quick", () => {
  let outDir = "";
  let nats: NatsServerProcess | undefined;
  let bus: Bus | undefined;

  afterAll(async () => {
    await bus?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("runs through the conductor and writes a report whose every number the services recorded", async () => {
    outDir = await mkdtemp(join(tmpdir(), "autodidact-demo-"));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NATS_URL;
    const args = [cli, "demo", "--quick", "--seed", String(SEED), "--rounds", String(ROUNDS), "--samples", String(SAMPLES), "--out", outDir, "--no-keep-open"];
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code, `${out}\n${err}`).toBe(0);

    // What the user sees: the run at the conductor with its labels regime, the table, the test-split summary.
    expect(out).toContain(`run ${RUN_ID} at the conductor: validation labels only at 1..6 (the base range)`);
    expect(out).toMatch(/round\s+len\s+proposed\s+accepted/);
    expect(out).toMatch(/run default \[validation labels only at 1\.\.6 \(the base range\)\]: test frontier \d+ -> \d+/);
    expect(out).toMatch(/accepted labels \d+ % right of \d+, proposed \d+ % of \d+/);
    // The decision audit (a core subscription: it sees a second decision that the stream would drop).
    expect(out).toContain(`decisions published: ${ROUNDS * SAMPLES} samples, 0 decided more than once`);

    const report = JSON.parse(await readFile(join(outDir, "report.json"), "utf8")) as DemoReport;
    expect(report.runs.map((r) => [r.name, r.seed, r.runId])).toEqual([["default", SEED, RUN_ID]]);
    const run = report.runs[0]!;
    expect(run.rounds).toHaveLength(ROUNDS);
    for (const r of run.rounds) {
      const p = r.phaseSeconds!;
      const phases = [p.serve, p.propose, p.judge, p.train, p.gate, p.probe ?? 0];
      expect(phases.every((x) => x >= 0)).toBe(true);
      expect(phases.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(r.seconds + 1);
      if (r.poolSize > 0) expect(p.train).toBeGreaterThan(0);
    }
    await checkRunAgainstRecords(run, report);

    const html = await readFile(join(outDir, "report.html"), "utf8");
    expect(html).toContain("validation labels only at 1..6");
    const figures = (report as DemoReport & { figures?: { id: string }[] }).figures ?? [];
    expect(figures.length).toBeGreaterThan(0);
    for (const f of figures) await access(join(outDir, "figures", `${f.id}.png`));
  }, 900_000);

  /** Reopens the run's NATS store and compares the run's numbers with the services' records. */
  async function checkRunAgainstRecords(run: DemoRun, report: DemoReport): Promise<void> {
    nats = await startNatsServer({ storeDir: join(run.stateDir, "nats") });
    bus = await connectBus({ servers: nats.url, name: "demo-test" });
    const decisions = await readDecisions(bus, report.task, 0);
    const records = openMonitorRecords<StoredEval, { version: number }>(bus);
    const registry = createRegistry(bus, { cacheDir: join(outDir, "test-cache") });

    // The conductor ran the loop: its events hold every round the report shows, once each, and the run's
    // spec with its labels regime; it proposed every sample (ids `<run>-r<round>-<i>`).
    const events = (await readStream(bus, Streams.Runs)).map((m) => fromBinary(RunEventSchema, m.data)).filter((e, i, all) => e.runId === RUN_ID && all.findIndex((x) => x.runId === RUN_ID && x.seq === e.seq) === i);
    const done = events.flatMap((e) => (e.event.case === "roundDone" ? [e.event.value] : []));
    expect(done.map((r) => [r.round, r.difficulty, Number(r.accepted)])).toEqual(run.rounds.map((r) => [r.round, r.labelLength, r.accepted]));
    const statuses = events.flatMap((e) => (e.event.case === "status" ? [e.event.value] : []));
    expect(statuses.at(-1)?.status).toBe(RunStatus.SUCCEEDED);
    expect(statuses.at(-1)?.spec?.labels).toMatchObject({ validation: { min: 1, max: 6 }, ablationValidationBeyondAnchor: false });

    const ids = decisions.map((d) => d.sampleId);
    expect(new Set(ids).size, "a sample decided twice").toBe(ids.length);
    for (const row of run.rounds) {
      const mine = decisions.filter((d) => d.sample?.round === row.round);
      expect(mine.length, `round ${row.round} decisions`).toBe(SAMPLES);
      expect(row.proposed).toBe(SAMPLES);
      for (const d of mine) expect(d.sampleId.startsWith(`${RUN_ID}-r${row.round}-`)).toBe(true);
      expect(mine.filter((d) => d.accepted).length).toBe(row.accepted);
      for (const d of mine) expect(d.sample?.difficulty).toBe(row.labelLength);
      // An acceptance needs the rules veto plus a model critic; a veto alone may reject.
      for (const d of mine) expect(d.votes.length, `votes of ${d.sampleId}`).toBeGreaterThanOrEqual(d.accepted ? 2 : 1);

      const stats = (await records.getRoundStats(report.task, row.round))!;
      expect(stats.accepted).toBe(row.accepted);
      expect(row.proposedLabelAccuracy).toBeCloseTo(stats.correctProposed / stats.proposed, 12);
      if (row.accepted > 0) expect(row.acceptedLabelAccuracy).toBeCloseTo(stats.correctAccepted / stats.accepted, 12);

      for (const l of row.lineages) {
        if (l.candidateVersion === 0) continue;
        const record = (await registry.getCheckpoint(l.lineage, l.candidateVersion))!;
        expect(record.round).toBe(row.round);
        expect(l.status).toBe(record.status);
        // Per-length accuracy is the test split's, as the monitor stored it.
        const evaluation = (await records.getEvaluation(l.lineage, l.candidateVersion))!;
        const test = [...evaluation.test!.perDifficulty].sort((a, b) => a.difficulty - b.difficulty);
        expect(l.accuracyByLength).toEqual(test.map((d) => ({ length: d.difficulty, accuracy: d.accuracy })));
        expect(l.frontier).toBe(frontierOf(l.accuracyByLength, report.frontierThreshold, report.frontierFrom));
        // Real anchor data stays in the base range: longer lengths come from self-made labels only.
        const mix = record.manifest["mix"] as { realByDifficulty: Record<string, number> };
        expect(Math.max(...Object.keys(mix.realByDifficulty).map(Number))).toBeLessThanOrEqual(6);
      }
      expect(row.frontier).toBe(frontierOf(row.accuracyByLength, report.frontierThreshold, report.frontierFrom));
    }
  }
});
