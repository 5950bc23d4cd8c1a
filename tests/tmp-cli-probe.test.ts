// The conductor from a terminal: on a local mesh (real processes, NATS credentials), `autodidact models
// import` copies a base model into the conductor's models directory and has it imported (once);
// `run create -f run.yaml` starts a run, `run pause` stops it after its current phase and `run resume`
// continues it, `run watch` follows it to the end, `run list` / `run get` show it, `run cancel` ends
// another; a phase that keeps failing fails its run with the reason and `run resume` retries it; bad
// input gets a clear message and exit code 2, a refused change exit code 1.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../apps/cli/local-mesh.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));

/** Runs the CLI; resolves with its exit code and output. */
function autodidact(args: string[], stateDir: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, AUTODIDACT_STATE_DIR: stateDir };
    delete env.AUTODIDACT_CONDUCTOR;
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}

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
    console.error(`[probe ${new Date().toISOString()}] const imported = await autodidact(["models", "import", join(`);
    expect(imported.code, imported.err).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(imported.code, imported.err).toBe(0);`);
    expect(imported.out).toMatch(/imported tiny-main as main@1, promoted by the monitor/);
    console.error(`[probe ${new Date().toISOString()}] expect(imported.out).toMatch(/imported tiny-main as main@1, `);
    expect(await readdir(join(mesh!.modelsDir, "tiny-main"))).toContain("model.safetensors");
    console.error(`[probe ${new Date().toISOString()}] expect(await readdir(join(mesh!.modelsDir, "tiny-main"))).to`);
    const again = await autodidact(["models", "import", join(work, "tiny-main"), "--lineage", "main"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const again = await autodidact(["models", "import", join(wor`);
    expect(again.out).toMatch(/main has a promoted checkpoint already \(v1\): nothing imported/);
    console.error(`[probe ${new Date().toISOString()}] expect(again.out).toMatch(/main has a promoted checkpoint al`);

    await writeFile(join(work, "run.yaml"), spec("cli-a", 2));
    console.error(`[probe ${new Date().toISOString()}] await writeFile(join(work, "run.yaml"), spec("cli-a", 2));`);
    const created = await autodidact(["run", "create", "-f", join(work, "run.yaml")], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const created = await autodidact(["run", "create", "-f", joi`);
    expect(created.code, created.err).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(created.code, created.err).toBe(0);`);
    expect(created.out).toMatch(/^run cli-a \(addition\): (pending|running)/);
    console.error(`[probe ${new Date().toISOString()}] expect(created.out).toMatch(/^run cli-a \(addition\): (pendi`);
    const paused = await autodidact(["run", "pause", "cli-a"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const paused = await autodidact(["run", "pause", "cli-a"], s`);
    expect(paused.code, paused.err).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(paused.code, paused.err).toBe(0);`);
    expect(paused.out).toMatch(/run cli-a \(addition\): (paused|running)/);
    console.error(`[probe ${new Date().toISOString()}] expect(paused.out).toMatch(/run cli-a \(addition\): (paused|`);
    // The pause takes effect after the phase that was running.
    for (let i = 0; i < 100; i++) {
      const got = await autodidact(["run", "get", "cli-a", "--json"], stateDir);
      if ((JSON.parse(got.out) as { status: string }).status === "RUN_STATUS_PAUSED") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const get = await autodidact(["run", "get", "cli-a"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const get = await autodidact(["run", "get", "cli-a"], stateD`);
    expect(get.out).toMatch(/run cli-a \(addition\): paused/);
    console.error(`[probe ${new Date().toISOString()}] expect(get.out).toMatch(/run cli-a \(addition\): paused/);`);
    const resumed = await autodidact(["run", "resume", "cli-a"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const resumed = await autodidact(["run", "resume", "cli-a"],`);
    expect(resumed.code, resumed.err).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(resumed.code, resumed.err).toBe(0);`);

    const watched = await autodidact(["run", "watch", "cli-a"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const watched = await autodidact(["run", "watch", "cli-a"], `);
    expect(watched.code, watched.err).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(watched.code, watched.err).toBe(0);`);
    expect(watched.out).toMatch(/\[1\] round 0 pending/);
    console.error(`[probe ${new Date().toISOString()}] expect(watched.out).toMatch(/\[1\] round 0 pending/);`);
    expect(watched.out).toMatch(/paused: paused before round/);
    console.error(`[probe ${new Date().toISOString()}] expect(watched.out).toMatch(/paused: paused before round/);`);
    expect(watched.out.match(/ done: difficulty /g)).toHaveLength(2);
    console.error(`[probe ${new Date().toISOString()}] expect(watched.out.match(/ done: difficulty /g)).toHaveLengt`);
    expect(watched.out).toMatch(/succeeded: ran 2 rounds \(stop\.max_rounds\)/);
    console.error(`[probe ${new Date().toISOString()}] expect(watched.out).toMatch(/succeeded: ran 2 rounds \(stop\`);

    const listed = await autodidact(["run", "list"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const listed = await autodidact(["run", "list"], stateDir);`);
    expect(listed.out).toMatch(/cli-a\s+addition\s+succeeded/);
    console.error(`[probe ${new Date().toISOString()}] expect(listed.out).toMatch(/cli-a\s+addition\s+succeeded/);`);
    const final = await autodidact(["run", "get", "cli-a"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const final = await autodidact(["run", "get", "cli-a"], stat`);
    expect(final.out).toMatch(/round\s+difficulty\s+accepted/);
    console.error(`[probe ${new Date().toISOString()}] expect(final.out).toMatch(/round\s+difficulty\s+accepted/);`);
    expect(final.out).toMatch(/8\/8\s+main:promoted@2/);
    console.error(`[probe ${new Date().toISOString()}] expect(final.out).toMatch(/8\/8\s+main:promoted@2/);`);

    // A finished run cannot be paused: refused (exit 1) with the reason.
    const refused = await autodidact(["run", "pause", "cli-a"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const refused = await autodidact(["run", "pause", "cli-a"], `);
    expect(refused.code).toBe(1);
    console.error(`[probe ${new Date().toISOString()}] expect(refused.code).toBe(1);`);
    expect(refused.err).toMatch(/run cli-a is SUCCEEDED: it cannot be paused/);
    console.error(`[probe ${new Date().toISOString()}] expect(refused.err).toMatch(/run cli-a is SUCCEEDED: it cann`);

    // Bad input: a spec that does not validate, an unknown run (exit 2 / 1 with the reason).
    await writeFile(join(work, "bad.json"), JSON.stringify({ name: "bad", task: "addition" }));
    console.error(`[probe ${new Date().toISOString()}] await writeFile(join(work, "bad.json"), JSON.stringify({ nam`);
    const bad = await autodidact(["run", "create", "-f", join(work, "bad.json")], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const bad = await autodidact(["run", "create", "-f", join(wo`);
    expect(bad.code).toBe(2);
    console.error(`[probe ${new Date().toISOString()}] expect(bad.code).toBe(2);`);
    expect(bad.err).toMatch(/run spec: lineages needs at least one lineage/);
    console.error(`[probe ${new Date().toISOString()}] expect(bad.err).toMatch(/run spec: lineages needs at least o`);
    const missing = await autodidact(["run", "get", "nope"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const missing = await autodidact(["run", "get", "nope"], sta`);
    expect(missing.code).toBe(1);
    console.error(`[probe ${new Date().toISOString()}] expect(missing.code).toBe(1);`);
    expect(missing.err).toMatch(/no run nope/);
    console.error(`[probe ${new Date().toISOString()}] expect(missing.err).toMatch(/no run nope/);`);

    await writeFile(join(work, "run-b.yaml"), spec("cli-b", 5));
    console.error(`[probe ${new Date().toISOString()}] await writeFile(join(work, "run-b.yaml"), spec("cli-b", 5));`);
    expect((await autodidact(["run", "create", "-f", join(work, "run-b.yaml")], stateDir)).code).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect((await autodidact(["run", "create", "-f", join(work, `);
    const cancelled = await autodidact(["run", "cancel", "cli-b"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const cancelled = await autodidact(["run", "cancel", "cli-b"`);
    expect(cancelled.code, cancelled.err).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(cancelled.code, cancelled.err).toBe(0);`);
    const end = await autodidact(["run", "watch", "cli-b"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const end = await autodidact(["run", "watch", "cli-b"], stat`);
    expect(end.code).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect(end.code).toBe(0);`);
    expect(end.out).toMatch(/cancelled/);
    console.error(`[probe ${new Date().toISOString()}] expect(end.out).toMatch(/cancelled/);`);
    expect(end.out.match(/ done: difficulty /g)?.length ?? 0).toBeLessThan(5);
    console.error(`[probe ${new Date().toISOString()}] expect(end.out.match(/ done: difficulty /g)?.length ?? 0).to`);

    // A phase that keeps failing (the trainer refuses the run's training config): retried, then the
    // run FAILED with the reason (watch exits 1); ResumeRun retries the phase.
    await writeFile(join(work, "run-c.yaml"), spec("cli-c", 1, "{ batchSize: 1 }"));
    console.error(`[probe ${new Date().toISOString()}] await writeFile(join(work, "run-c.yaml"), spec("cli-c", 1, "`);
    expect((await autodidact(["run", "create", "-f", join(work, "run-c.yaml")], stateDir)).code).toBe(0);
    console.error(`[probe ${new Date().toISOString()}] expect((await autodidact(["run", "create", "-f", join(work, `);
    const failed = await autodidact(["run", "watch", "cli-c"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const failed = await autodidact(["run", "watch", "cli-c"], s`);
    expect(failed.code).toBe(1);
    console.error(`[probe ${new Date().toISOString()}] expect(failed.code).toBe(1);`);
    expect(failed.out).toMatch(/train failed \(attempt 1 of 2\), retrying: .*batch_size/);
    console.error(`[probe ${new Date().toISOString()}] expect(failed.out).toMatch(/train failed \(attempt 1 of 2\),`);
    expect(failed.out).toMatch(/failed: round \d+ train failed after 2 attempts: .*training\.batch_size must be an integer in \[2, 4096\], got 1/);
    console.error(`[probe ${new Date().toISOString()}] expect(failed.out).toMatch(/failed: round \d+ train failed a`);
    const retried = await autodidact(["run", "resume", "cli-c"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const retried = await autodidact(["run", "resume", "cli-c"],`);
    expect(retried.out).toMatch(/run cli-c \(addition\): running/);
    console.error(`[probe ${new Date().toISOString()}] expect(retried.out).toMatch(/run cli-c \(addition\): running`);
    const replay = await autodidact(["run", "watch", "cli-c", "--from-seq", "1"], stateDir);
    console.error(`[probe ${new Date().toISOString()}] const replay = await autodidact(["run", "watch", "cli-c", "-`);
    expect(replay.out.match(/train failed after 2 attempts/g)).toHaveLength(2);
    console.error(`[probe ${new Date().toISOString()}] expect(replay.out.match(/train failed after 2 attempts/g)).t`);
  }, 900_000);
});
