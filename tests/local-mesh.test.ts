// `autodidact up` as a user runs it: a real nats-server with per-service NATS credentials and every
// service as its own process, health and Prometheus endpoints via `autodidact status`, a sample decided
// through the mesh under least privilege, every service's state inside --state-dir (nothing in the
// working directory), and Ctrl-C as a terminal sends it (SIGINT to the whole process group) draining
// every service to a clean exit and leaving nothing running.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { create, toBinary } from "@bufbuild/protobuf";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { connectBus } from "../src/platform/bus/index.js";
import type { MeshState } from "../apps/cli/mesh-state.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { resolveNatsCredentials } from "../src/platform/nats-auth/index.js";
import { Streams, Subjects } from "../src/domain/topology/index.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("autodidact up / status", () => {
  let up: ChildProcess | undefined;
  let stateDir = "";

  let workDir = "";

  afterAll(async () => {
    if (up?.pid !== undefined && up.exitCode === null) {
      process.kill(-up.pid, "SIGKILL");
      // The nats-server runs in a group of its own: a failed run leaves it behind unless stopped by its pid.
      const natsPid = await readFile(join(stateDir, "mesh.json"), "utf8").then((t) => (JSON.parse(t) as MeshState).natsPid, () => undefined);
      const ours = natsPid ? await readFile(`/proc/${natsPid}/cmdline`, "utf8").then((c) => c.includes(stateDir), () => false) : false;
      if (ours) process.kill(natsPid!, "SIGKILL");
    }
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("starts the mesh with NATS auth and metrics, reports every service SERVING, decides a sample, keeps state in --state-dir, and drains everything on a terminal's Ctrl-C", async () => {
    stateDir = await mkdtemp(join(tmpdir(), "autodidact-up-"));
    workDir = await mkdtemp(join(tmpdir(), "autodidact-up-cwd-"));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NATS_URL;
    delete env.AUTODIDACT_STATE_DIR;
    delete env.AUTODIDACT_METRICS_PORT;
    // Its own process group, as a shell gives a foreground job: the SIGINT below reaches `up` and every
    // process it started in that group at once, as Ctrl-C in a terminal does.
    up = spawn(process.execPath, [cli, "up", "--state-dir", stateDir], { env, cwd: workDir, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    up.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    up.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    const upExit = new Promise<number | null>((resolve) => up!.once("exit", (code) => resolve(code)));
    for (let i = 0; i < 900 && !out.includes("local mesh is up"); i++) {
      if (up.exitCode !== null) throw new Error(`up exited early:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toContain("local mesh is up");

    const status = spawnSync(process.execPath, [cli, "status", "--state-dir", stateDir], { env, encoding: "utf8", timeout: 60_000 });
    expect(status.status, status.stderr).toBe(0);
    const rows = status.stdout.split("\n").filter((l) => /^(generator|critic-[abc]|consensus|trainer|monitor|conductor)\s/.test(l));
    expect(rows.map((r) => r.split(/\s+/)[0]).sort()).toEqual(
      ["conductor", "consensus", "critic-a", "critic-b", "critic-c", "generator", "monitor", "trainer"],
    );
    for (const row of rows) expect(row).toMatch(/\sSERVING\s/);

    const state = JSON.parse(await readFile(join(stateDir, "mesh.json"), "utf8")) as MeshState;
    expect(state.ownsNats).toBe(true);
    const pids = state.services.map((s) => s.pid);
    expect(pids).toHaveLength(8);
    // Metrics are on: every service on a port of its own, each listed by status.
    const metricsUrls = new Map(state.services.map((s) => [s.name, `http://127.0.0.1:${s.metricsPort}/metrics`]));
    expect(new Set(state.services.map((s) => s.metricsPort)).size).toBe(8);
    for (const row of rows) expect(row).toContain(metricsUrls.get(row.split(/\s+/)[0]!)!);

    // NATS refuses anonymous connections; the generator's credentials propose a sample, the critics
    // vote, and the consensus service decides it.
    const anonymous = await connectBus({ servers: state.natsUrl, name: "anonymous" }).then(
      (b) => b.close().then(() => null),
      (e: unknown) => e,
    );
    expect(anonymous).toBeInstanceOf(AutodidactError);
    expect((anonymous as AutodidactError).code).toBe(Code.Unauthenticated);
    const seedFile = (name: string): string => join(stateDir, "secrets", `${name}.nk`);
    const generator = await connectBus({ servers: state.natsUrl, name: "test-generator", credentials: (await resolveNatsCredentials({ natsNkeyFile: seedFile("generator") }))! });
    const admin = await connectBus({ servers: state.natsUrl, name: "test-admin", credentials: (await resolveNatsCredentials({ natsNkeyFile: seedFile("admin") }))! });
    try {
      const sample = create(SampleSchema, { id: "up-sample-1", task: "addition", prompt: "12+34=", completion: "64", difficulty: 2 });
      await generator.publish(Subjects.proposed("addition"), toBinary(SampleSchema, sample), { msgId: sample.id });
      let decisions = 0;
      for (let i = 0; i < 600 && decisions === 0; i++) {
        decisions = (await admin.jsm.streams.info(Streams.Decisions)).state.messages;
        if (decisions === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(decisions).toBe(1);
      // The consensus service's own endpoint counts the decision it made.
      let scraped = "";
      for (let i = 0; i < 100 && !/^autodidact_consensus_decisions_total\{[^}]*\} 1$/m.test(scraped); i++) {
        scraped = await (await fetch(metricsUrls.get("consensus")!)).text();
        if (!/^autodidact_consensus_decisions_total\{/m.test(scraped)) await new Promise((r) => setTimeout(r, 100));
      }
      expect(scraped).toContain('service_name="autodidact-consensus",service_instance_id="consensus"');
      expect(scraped).toMatch(/^autodidact_consensus_decisions_total\{[^}]*\} 1$/m);
    } finally {
      await generator.close();
      await admin.close();
    }
    const natsPort = Number(new URL(state.natsUrl).port);
    const natsPid = spawnSync("pgrep", ["-f", `nats-server -a 127.0.0.1 -p ${natsPort} `], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .map(Number)
      .filter((n) => n > 0);
    expect(natsPid).toEqual([state.natsPid]);

    process.kill(-up.pid!, "SIGINT");
    const upCode = await upExit;
    expect(upCode, `${out}\n${err}`).toBe(0);
    expect(out).toContain("stopped: every service drained and exited cleanly");
    for (const pid of [...pids, ...natsPid]) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    // Every service drained to exit code 0: the supervisor's SIGTERM right after the terminal's SIGINT
    // did not kill any of them mid-drain, and NATS was still there for their drain.
    const logNames = (await readdir(join(stateDir, "logs"))).sort();
    expect(logNames).toEqual(["conductor", "consensus", "critic-a", "critic-b", "critic-c", "generator", "monitor", "trainer"].map((n) => `${n}.log`));
    for (const log of logNames) {
      const text = await readFile(join(stateDir, "logs", log), "utf8");
      expect(text.trimEnd().split("\n").at(-1), log).toBe("# exited code=0 signal=null");
      expect(text, log).not.toMatch(/did not drain in time|could not flush/);
    }
    // Per-service state lives in the state dir; nothing was written to the working directory.
    expect(await readdir(workDir)).toEqual([]);
    expect(await readdir(join(stateDir, "services", "trainer"))).toEqual(expect.arrayContaining(["rounds.jsonl"]));

    // No service log holds a seed, and no service hit a permission it lacks.
    const seeds = await Promise.all((await readdir(join(stateDir, "secrets"))).filter((f) => f.endsWith(".nk")).map(async (f) => (await readFile(join(stateDir, "secrets", f), "utf8")).trim()));
    expect(seeds.length).toBe(9); // admin and every member (conductor included)
    for (const log of await readdir(join(stateDir, "logs"))) {
      const text = await readFile(join(stateDir, "logs", log), "utf8");
      for (const seed of seeds) expect(text, log).not.toContain(seed);
      expect(text, log).not.toMatch(/permissions violation|PERMISSION_DENIED/i);
    }
    expect(out + err).not.toMatch(/permissions violation|PERMISSION_DENIED/i);

    // With the mesh gone, status says so and fails.
    const after = spawnSync(process.execPath, [cli, "status", "--state-dir", stateDir], { env, encoding: "utf8", timeout: 60_000 });
    expect(after.status).toBe(1);
    expect(after.stderr).toMatch(/no service of the local mesh .* is running/);
  }, 120_000);

  it("refuses a bad flag value with a message and exit code 2", () => {
    const res = spawnSync(process.execPath, [cli, "critic", "--grpc-port", "99999"], { encoding: "utf8" });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/--grpc-port/);
  });
});
