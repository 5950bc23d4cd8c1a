// The conductor from a terminal: on a local mesh (real processes, NATS credentials), `autodidact models
// import` copies a base model into the conductor's models directory and has it imported (once);
// `run create -f run.yaml` starts a run, `run pause` stops it after its current phase and `run resume`
// continues it, `run watch` follows it to the end, `run list` / `run get` show it, `run cancel` ends
// another; a phase that keeps failing fails its run with the reason and `run resume` retries it; bad
// input gets a clear message and exit code 2, a refused change exit code 1.
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "./cli-support.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../apps/cli/local-mesh.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";


/** Runs the CLI against the mesh whose state is in `stateDir`. */
const autodidact = (args: string[], stateDir: string) => runCli(args, { set: { AUTODIDACT_STATE_DIR: stateDir }, unset: ["AUTODIDACT_CONDUCTOR"] });

const spec = (name: string, rounds: number, training = "{ steps: 4, batchSize: 4 }"): string =>
  [
    `name: ${name}`,
    "task: addition",
    "lineages: [{ name: main, baseModel: tiny-main }]",
    "curriculum: { kind: KIND_FIXED_STEP, start: 1, max: 3 }",
    "proposalsPerRound: 8",
    `stop: { maxRounds: ${rounds} }`,
    "critics: [{ id: accept, kind: accept-all }]",
    "consensus: { kind: CONSENSUS_KIND_K_OF_N, critics: [accept], k: 1, timeoutMs: 5000, onTimeout: TIMEOUT_OUTCOME_REJECT }",
    `training: ${training}`,
    "gate: { minAccuracyDelta: -1, maxDifficultyRegression: 1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 1, maxDriftKl: 1000000000, autoPromote: true }",
    "labels: { anchor: { min: 1, max: 2 }, test: { min: 1, max: 3 } }",
    "",
  ].join("\n");

describe("autodidact run / models", () => {
  let stateDir: string;
  let work: string;
  let mesh: LocalMesh | undefined;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "conductor-cli-"));
    work = await mkdtemp(join(tmpdir(), "conductor-cli-work-"));
    await saveTinyDecoder(join(work, "tiny-main"), 3);
    const quiet = ["--log-level", "warn"];
    const members: MeshMember[] = [
      { name: "generator", kind: "generator", args: ["--batch-size", "4", ...quiet] },
      { name: "critic-accept", kind: "critic", args: ["--kind", "accept-all", "--critic-id", "accept", ...quiet] },
      { name: "trainer", kind: "trainer", args: ["--steps", "8", "--batch-size", "4", "--max-reuse", "1000", ...quiet] },
      { name: "monitor", kind: "monitor", args: ["--eval-limit", "2", "--eval-max-difficulty", "2", "--eval-samples", "2", "--dashboard-port", "-1", ...quiet] },
      { name: "conductor", kind: "conductor", args: ["--poll-interval", "100ms", "--progress-every", "200ms", "--retry-delay", "100ms", "--phase-attempts", "2", ...quiet] },
    ];
    mesh = await startLocalMesh({ stateDir, members, readyTimeoutMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    await mesh?.stop();
    await rm(stateDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it("imports a base model once, runs a run through pause and resume to its end, cancels another, and fails (then retries) one whose training the trainer refuses", async () => {
    const imported = await autodidact(["models", "import", join(work, "tiny-main"), "--lineage", "main"], stateDir);
    expect(imported.code, imported.err).toBe(0);
    expect(imported.out).toMatch(/imported tiny-main as main@1, promoted by the monitor/);
    expect(await readdir(join(mesh!.modelsDir, "tiny-main"))).toContain("model.safetensors");
    const again = await autodidact(["models", "import", join(work, "tiny-main"), "--lineage", "main"], stateDir);
    expect(again.out).toMatch(/main has a promoted checkpoint already \(v1\): nothing imported/);

    await writeFile(join(work, "run.yaml"), spec("cli-a", 2));
    const created = await autodidact(["run", "create", "-f", join(work, "run.yaml")], stateDir);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/^run cli-a \(addition\): (pending|running)/);
    const paused = await autodidact(["run", "pause", "cli-a"], stateDir);
    expect(paused.code, paused.err).toBe(0);
    expect(paused.out).toMatch(/run cli-a \(addition\): (paused|running)/);
    // The pause takes effect after the phase that was running.
    for (let i = 0; i < 100; i++) {
      const got = await autodidact(["run", "get", "cli-a", "--json"], stateDir);
      if ((JSON.parse(got.out) as { status: string }).status === "RUN_STATUS_PAUSED") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const get = await autodidact(["run", "get", "cli-a"], stateDir);
    expect(get.out).toMatch(/run cli-a \(addition\): paused/);
    const resumed = await autodidact(["run", "resume", "cli-a"], stateDir);
    expect(resumed.code, resumed.err).toBe(0);

    const watched = await autodidact(["run", "watch", "cli-a"], stateDir);
    expect(watched.code, watched.err).toBe(0);
    expect(watched.out).toMatch(/\[1\] round 0 pending/);
    expect(watched.out).toMatch(/paused: paused before round/);
    expect(watched.out.match(/ done: difficulty /g)).toHaveLength(2);
    expect(watched.out).toMatch(/succeeded: ran 2 rounds \(stop\.max_rounds\)/);

    const listed = await autodidact(["run", "list"], stateDir);
    expect(listed.out).toMatch(/cli-a\s+addition\s+succeeded/);
    const final = await autodidact(["run", "get", "cli-a"], stateDir);
    expect(final.out).toMatch(/round\s+difficulty\s+accepted/);
    expect(final.out).toMatch(/8\/8\s+main:promoted@2/);

    // A finished run cannot be paused: refused (exit 1) with the reason.
    const refused = await autodidact(["run", "pause", "cli-a"], stateDir);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/run cli-a is SUCCEEDED: it cannot be paused/);

    // Bad input: a spec that does not validate, an unknown run (exit 2 / 1 with the reason).
    await writeFile(join(work, "bad.json"), JSON.stringify({ name: "bad", task: "addition" }));
    const bad = await autodidact(["run", "create", "-f", join(work, "bad.json")], stateDir);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/run spec: lineages needs at least one lineage/);
    const missing = await autodidact(["run", "get", "nope"], stateDir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no run nope/);

    await writeFile(join(work, "run-b.yaml"), spec("cli-b", 5));
    expect((await autodidact(["run", "create", "-f", join(work, "run-b.yaml")], stateDir)).code).toBe(0);
    const cancelled = await autodidact(["run", "cancel", "cli-b"], stateDir);
    expect(cancelled.code, cancelled.err).toBe(0);
    const end = await autodidact(["run", "watch", "cli-b"], stateDir);
    expect(end.code).toBe(0);
    expect(end.out).toMatch(/cancelled/);
    expect(end.out.match(/ done: difficulty /g)?.length ?? 0).toBeLessThan(5);

    // A phase that keeps failing (the trainer refuses the run's training config): retried, then the
    // run FAILED with the reason (watch exits 1); ResumeRun retries the phase.
    await writeFile(join(work, "run-c.yaml"), spec("cli-c", 1, "{ batchSize: 1 }"));
    expect((await autodidact(["run", "create", "-f", join(work, "run-c.yaml")], stateDir)).code).toBe(0);
    const failed = await autodidact(["run", "watch", "cli-c"], stateDir);
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/train failed \(attempt 1 of 2\), retrying: .*batch_size/);
    expect(failed.out).toMatch(/failed: round \d+ train failed after 2 attempts: .*training\.batch_size must be an integer in \[2, 4096\], got 1/);
    const retried = await autodidact(["run", "resume", "cli-c"], stateDir);
    expect(retried.out).toMatch(/run cli-c \(addition\): running/);
    const replay = await autodidact(["run", "watch", "cli-c", "--from-seq", "1"], stateDir);
    expect(replay.out.match(/train failed after 2 attempts/g)).toHaveLength(2);
  }, 300_000);
});
