// NATS authentication with per-service permissions, against a real nats-server started with the
// generated authorization config: each role can do its own work and is refused the rest.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, openKv, permissionViolation, startNatsServer, waitForLagBelow, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { createConsensusPolicy, openPolicyStore } from "../src/domain/consensus/index.js";
import { createConsensusWorker, type ConsensusWorker } from "../services/consensus/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { DecisionSchema } from "../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { createRegistry, listCheckpointFiles, type CheckpointRecord } from "../src/domain/registry/index.js";
import { generateMeshCredentials, resolveNatsCredentials, SECRET_ENV, type MeshSecretSet } from "../src/platform/nats-auth/index.js";
import { headers, nkeys } from "@nats-io/transport-node";
import { ensureMeshTopology, natsPermissions, Streams, Subjects } from "../src/domain/topology/index.js";

let dir: string;
let server: NatsServerProcess;
let secrets: MeshSecretSet;
const buses: Bus[] = [];
const workers: ConsensusWorker[] = [];

const TASK = "addition";

async function connectAs(name: string): Promise<Bus> {
  const credentials = await resolveNatsCredentials({ natsNkeyFile: secrets.seedFileOf(name) });
  const bus = await connectBus({ servers: server.url, name: `test-${name}`, credentials: credentials!, timeoutMs: 5_000 });
  buses.push(bus);
  return bus;
}

/** Awaits a promise expected to fail, and returns its error as an AutodidactError. */
async function refusal(p: Promise<unknown>): Promise<AutodidactError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AutodidactError);
    return err as AutodidactError;
  }
  throw new Error("expected a refusal, but it succeeded");
}

const sampleBytes = (id: string): Uint8Array =>
  toBinary(SampleSchema, create(SampleSchema, { id, task: TASK, prompt: "21+93=", completion: "411", difficulty: 2 }));
const verdictBytes = (sampleId: string, criticId: string): Uint8Array =>
  toBinary(VerdictSchema, create(VerdictSchema, { sampleId, criticId, approve: true, score: 0.9, task: TASK, reason: "test" }));

let admin: Bus;
let generator: Bus;
let critic: Bus;
let consensus: Bus;
let trainer: Bus;
let monitor: Bus;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "autodidact-auth-"));
  secrets = await generateMeshCredentials(join(dir, "secrets"), [
    { name: "admin", role: "admin" },
    { name: "generator", role: "generator" },
    { name: "critic-a", role: "critic", criticId: "critic-a" },
    { name: "consensus", role: "consensus" },
    { name: "trainer", role: "trainer" },
    { name: "monitor", role: "monitor" },
  ], natsPermissions);
  server = await startNatsServer({ configFile: secrets.configFile });
  admin = await connectAs("admin");
  await ensureMeshTopology(admin);
  generator = await connectAs("generator");
  critic = await connectAs("critic-a");
  consensus = await connectAs("consensus");
  trainer = await connectAs("trainer");
  monitor = await connectAs("monitor");
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
  await Promise.all(buses.map((b) => b.close().catch(() => undefined)));
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("generated credentials", () => {
  it("keeps seed files private (0600 in a 0700 folder) and the server config free of seeds", async () => {
    for (const c of secrets.credentials) {
      expect((await stat(c.seedFile)).mode & 0o777).toBe(0o600);
    }
    expect((await stat(join(dir, "secrets"))).mode & 0o777).toBe(0o700);
    const config = await readFile(secrets.configFile, "utf8");
    for (const c of secrets.credentials) {
      const seed = (await readFile(c.seedFile, "utf8")).trim();
      expect(seed).toMatch(/^SU/);
      expect(config).not.toContain(seed);
      expect(config).toContain(c.publicKey);
    }
  });
});

describe("connections", () => {
  it("refuses a connection without credentials as UNAUTHENTICATED", async () => {
    const err = await refusal(connectBus({ servers: server.url, name: "anonymous" }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/no credentials/);
  });

  it("refuses an nkey the server does not know, without quoting it", async () => {
    const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
    const env: NodeJS.ProcessEnv = { [SECRET_ENV.nkeySeed]: stranger };
    const credentials = await resolveNatsCredentials({}, env);
    expect(env[SECRET_ENV.nkeySeed]).toBeUndefined();
    const err = await refusal(connectBus({ servers: server.url, name: "stranger", credentials: credentials! }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.message).not.toContain(stranger);
  });

  it("every service identity can verify (not create) the topology", async () => {
    for (const bus of [generator, critic, consensus, trainer, monitor]) {
      const report = await ensureMeshTopology(bus);
      expect(report.created).toEqual([]);
      expect(report.updated).toEqual([]);
    }
  });

  it("a service identity may neither create nor delete streams", async () => {
    const raw = async (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);
    expect(permissionViolation(await raw(trainer.jsm.streams.add({ name: "ROGUE", subjects: ["rogue.>"] })))?.subject).toBe("$JS.API.STREAM.CREATE.ROGUE");
    expect(permissionViolation(await raw(monitor.jsm.streams.delete(Streams.Decisions)))?.subject).toBe("$JS.API.STREAM.DELETE.DECISIONS");
    expect(permissionViolation(await raw(trainer.jsm.streams.purge("KV_registry")))?.subject).toBe("$JS.API.STREAM.PURGE.KV_registry");
  });

  it("on an empty server, a service's ensureTopology says to create the topology with the admin identity", async () => {
    const empty = await startNatsServer({ configFile: secrets.configFile });
    try {
      const credentials = await resolveNatsCredentials({ natsNkeyFile: secrets.seedFileOf("trainer") });
      const bus = await connectBus({ servers: empty.url, name: "trainer-on-empty", credentials: credentials! });
      try {
        const err = await refusal(ensureMeshTopology(bus));
        expect(err.code).toBe(Code.PermissionDenied);
        expect(err.rawMessage).toMatch(/autodidact topology/);
      } finally {
        await bus.close();
      }
    } finally {
      await empty.stop();
    }
  });
});

describe("publish permissions", () => {
  it("a critic's credentials are refused when publishing a decision (PERMISSION_DENIED)", async () => {
    const decision = toBinary(DecisionSchema, create(DecisionSchema, { sampleId: "forged-1", task: TASK, accepted: true }));
    const err = await refusal(critic.publish(Subjects.decisions(TASK), decision, { msgId: "forged-1" }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toContain('"decisions.addition"');
    // ... while its own verdicts go through.
    const ok = await critic.publish(Subjects.verdicts(TASK), verdictBytes("s-critic", "critic-a"), { msgId: "s-critic:critic-a" });
    expect(ok.stream).toBe(Streams.Verdicts);
  });

  it("a generator cannot publish verdicts, but proposes samples", async () => {
    const err = await refusal(generator.publish(Subjects.verdicts(TASK), verdictBytes("s-gen", "critic-a"), { msgId: "s-gen:forged" }));
    expect(err.code).toBe(Code.PermissionDenied);
    const ok = await generator.publish(Subjects.proposed(TASK), sampleBytes("s-gen"), { msgId: "s-gen" });
    expect(ok.stream).toBe(Streams.Samples);
  });

  it("a critic cannot run consensus: binding the consensus durables is refused", async () => {
    const policy = createConsensusPolicy({ version: 1, kind: "k_of_n", k: 1, expected: ["critic-a"], timeoutMs: 5_000, onTimeout: "reject" });
    const err = await refusal(createConsensusWorker({ bus: critic, policyProvider: () => policy, id: "rogue" }));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it("nobody but consensus writes the consensus KV", async () => {
    const kv = await openKv(trainer, "consensus");
    const err = await refusal(kv.putJson("forged", { decided: true }));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

describe("the mesh's work under least privilege", () => {
  it("a sample flows generator -> critic -> consensus -> trainer, each under its own identity", async () => {
    const policy = createConsensusPolicy({ version: 1, kind: "k_of_n", k: 1, expected: ["critic-a"], timeoutMs: 10_000, onTimeout: "reject" });
    const store = await openPolicyStore(consensus);
    const worker = await createConsensusWorker({ bus: consensus, policyProvider: store.provider({ fallback: policy }), id: "consensus-test", sweepIntervalMs: 100 });
    workers.push(worker);

    const judged: string[] = [];
    const criticConsumer = await consume(critic, { stream: Streams.Samples, durable: "critic-critic-a", filterSubject: Subjects.allProposed }, async (msg) => {
      const sample = fromBinary(SampleSchema, msg.data);
      judged.push(sample.id);
      await critic.publish(Subjects.verdicts(sample.task), verdictBytes(sample.id, "critic-a"), { msgId: `${sample.id}:critic-a` });
    });
    const decided: string[] = [];
    const intake = await consume(trainer, { stream: Streams.Decisions, durable: "trainer", filterSubject: Subjects.allDecisions }, async (msg) => {
      decided.push(fromBinary(DecisionSchema, msg.data).sampleId);
    });
    try {
      await generator.publish(Subjects.proposed(TASK), sampleBytes("flow-1"), { msgId: "flow-1" });
      for (let i = 0; i < 300 && !decided.includes("flow-1"); i++) await new Promise((r) => setTimeout(r, 100));
      expect(judged).toContain("flow-1");
      expect(decided).toContain("flow-1");
      expect(worker.stats().poisoned).toBe(0);
    } finally {
      await criticConsumer.stop();
      await intake.stop();
    }
  }, 60_000);

  it("the generator reads the critics' backlog (back-pressure) but cannot pull or ack their messages", async () => {
    const names: string[] = [];
    for await (const c of generator.jsm.consumers.list(Streams.Samples)) names.push(c.name);
    expect(names).toContain("critic-critic-a");
    const lag = await waitForLagBelow(generator, Streams.Samples, "critic-critic-a", 1_000);
    expect(lag.total).toBeLessThan(1_000);
    // Reading a consumer's info is allowed; taking its messages is not.
    const next = "$JS.API.CONSUMER.MSG.NEXT.SAMPLES.critic-critic-a";
    const pulled = await generator.nc.request(next, JSON.stringify({ batch: 1, expires: 500_000_000 }), { timeout: 5_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(permissionViolation(pulled)?.subject).toBe(next);
  });

  it("a critic may not consume with another durable than its own", async () => {
    const err = await refusal(consume(critic, { stream: Streams.Samples, durable: "critic-critic-b", filterSubject: Subjects.allProposed }, async () => undefined));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it("the trainer registers checkpoints but cannot move the promoted pointer; the monitor can", async () => {
    const ckpt = join(dir, "ckpt");
    await mkdir(ckpt, { recursive: true });
    await writeFile(join(ckpt, "model.safetensors"), "weights");
    const trainerRegistry = createRegistry(trainer, { cacheDir: join(dir, "cache-trainer") });
    const version = await trainerRegistry.allocateVersion("main", "trainer:test");
    const record: CheckpointRecord = {
      lineage: "main",
      version,
      parentVersion: 0,
      round: 1,
      status: "candidate",
      statusReason: "",
      files: await listCheckpointFiles(ckpt),
      manifest: {},
      metrics: {},
      createdAt: new Date().toISOString(),
    };
    await trainerRegistry.putCheckpoint(record, ckpt);

    const err = await refusal(trainerRegistry.setPromoted("main", version));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toContain("$KV.registry.promoted.main");
    const err2 = await refusal(trainer.publish(Subjects.promotionAudit("promoted"), new Uint8Array([1]), { msgId: "forged-promotion" }));
    expect(err2.code).toBe(Code.PermissionDenied);

    const monitorRegistry = createRegistry(monitor, { cacheDir: join(dir, "cache-monitor") });
    await monitorRegistry.setStatus("main", version, "promoted", "test");
    await monitorRegistry.setPromoted("main", version, 0);
    expect((await monitorRegistry.getPromoted("main"))?.version).toBe(version);
    // A rollup header on a key the trainer may write would purge the whole bucket: the registry refuses rollups.
    const rollup = headers();
    rollup.set("Nats-Rollup", "all");
    const wiped = await trainer.js.publish("$KV.registry.version.main", new TextEncoder().encode("{}"), { headers: rollup }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(wiped)).toMatch(/rollup not permitted/);
    expect((await monitorRegistry.getPromoted("main"))?.version).toBe(version);
    // Readers (generator) see the pointer and fetch the files, verified by digest.
    const generatorRegistry = createRegistry(generator, { cacheDir: join(dir, "cache-generator") });
    expect((await generatorRegistry.getPromoted("main"))?.version).toBe(version);
    const local = await generatorRegistry.materialize("main", version);
    expect(await readFile(join(local, "model.safetensors"), "utf8")).toBe("weights");
    // ... and cannot move it either.
    expect((await refusal(generatorRegistry.setPromoted("main", version))).code).toBe(Code.PermissionDenied);
  }, 60_000);
});

describe("user and password (servers configured by hand)", () => {
  it("connects with --nats-user and a password file or AUTODIDACT_NATS_PASSWORD, and refuses a wrong one without quoting it", async () => {
    const password = "pw-" + Math.random().toString(36).slice(2);
    const conf = join(dir, "password.conf");
    await writeFile(conf, `authorization { users = [ { user: "operator", password: ${JSON.stringify(password)} } ] }\n`);
    const pwFile = join(dir, "password.txt");
    await writeFile(pwFile, password + "\n", { mode: 0o600 });
    const pwServer = await startNatsServer({ configFile: conf });
    try {
      const fromFile = await resolveNatsCredentials({ natsUser: "operator", natsPasswordFile: pwFile });
      const a = await connectBus({ servers: pwServer.url, name: "pw-file", credentials: fromFile! });
      await ensureMeshTopology(a);
      await a.close();
      const env: NodeJS.ProcessEnv = { [SECRET_ENV.password]: password };
      const fromEnv = await resolveNatsCredentials({ natsUser: "operator" }, env);
      expect(env[SECRET_ENV.password]).toBeUndefined();
      const b = await connectBus({ servers: pwServer.url, name: "pw-env", credentials: fromEnv! });
      await b.close();
      const err = await refusal(connectBus({ servers: pwServer.url, name: "pw-wrong", credentials: { user: "operator", pass: `${password}-wrong` } }));
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.message).not.toContain(password);
      // A password without a user, or a user without a password, is a usage error.
      expect((await refusal(resolveNatsCredentials({ natsPasswordFile: pwFile }))).code).toBe(Code.InvalidArgument);
      expect((await refusal(resolveNatsCredentials({ natsUser: "operator" }))).code).toBe(Code.InvalidArgument);
    } finally {
      await pwServer.stop();
    }
  });
});

describe("secrets stay out of logs", () => {
  it("a service started with its seed in the environment never prints it, even at debug level", async () => {
    const seed = (await readFile(secrets.seedFileOf("consensus"), "utf8")).trim();
    const main = fileURLToPath(new URL("../services/consensus/main.ts", import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: server.url, [SECRET_ENV.nkeySeed]: seed, AUTODIDACT_LOG_LEVEL: "debug", AUTODIDACT_CONSENSUS_CRITICS: "critic-a" };
    delete env.AUTODIDACT_NATS_NKEY_FILE;
    const child = spawn(process.execPath, ["--import", "tsx", main, "--instance-id", "consensus-secret-test", "--grpc-host", "127.0.0.1"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    for (let i = 0; i < 1200 && !out.includes('"event":"ready"') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    expect(out, out).toContain('"event":"ready"');
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(out).not.toContain(seed);
    expect(out).not.toContain(seed.slice(2, 20));

    // A wrong seed: the service fails to start with a message that does not quote it.
    const wrong = new TextDecoder().decode(nkeys.createUser().getSeed());
    const bad = spawn(process.execPath, ["--import", "tsx", main, "--instance-id", "consensus-bad-seed"], {
      env: { ...env, [SECRET_ENV.nkeySeed]: wrong },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let badOut = "";
    bad.stdout.on("data", (c: Buffer) => (badOut += c.toString()));
    bad.stderr.on("data", (c: Buffer) => (badOut += c.toString()));
    const badExit = await new Promise<number | null>((r) => bad.once("exit", (code) => r(code)));
    expect(badExit).toBe(1);
    // Refused (or, on a loaded machine, timed out in the auth handshake): either way a failed start.
    expect(badOut).toMatch(/failed to start: (NATS at .* refused the connection|cannot connect to NATS)/);
    expect(badOut).not.toContain(wrong);
  }, 240_000);
});
