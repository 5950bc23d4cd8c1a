// gRPC security on real services: a monitor serving TLS with an access list (Promote refused to
// anonymous and non-admin callers, allowed to the admin; the CLI sends the admin token over TLS), a
// critic whose SwapModel is admin-only, and size limits (an oversized message is refused with
// RESOURCE_EXHAUSTED and an over-long prompt is rejected with its reason, while the service keeps serving).
import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientSecurity, createTestCertificates, generateToken, type TestCertificates } from "../src/platform/auth/index.js";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { monitorCommand } from "../apps/cli/monitor-commands.js";
import { defineOptions, serviceOptions } from "../src/platform/config/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { startService, type RunningService, type ServiceConfig } from "../src/platform/host/index.js";
import { createRegistry, type CheckpointRecord, type Registry } from "../src/domain/registry/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { setLogSink } from "../src/platform/telemetry/index.js";
import { criticOptions, criticService } from "../services/critic/index.js";
import { registerCandidate, startMonitor, tmpdir } from "./monitor-support.js";
import { ensureMeshTopology } from "../src/domain/topology/index.js";

async function failure(promise: Promise<unknown>): Promise<AutodidactError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AutodidactError);
  return err as AutodidactError;
}

const admin = generateToken("ops-admin", ["admin"]);
const reader = generateToken("grafana", ["reader"]);
const authJson = JSON.stringify({ tokens: [admin.entry, reader.entry] });

describe("gRPC security on real services", () => {
  let nats: NatsServerProcess;
  let bus: Bus;
  let work: string;
  let pki: TestCertificates;
  let registry: Registry;
  let monitor: RunningService;
  let critic: RunningService;
  let v1: CheckpointRecord;
  let v2: CheckpointRecord;
  const logLines: string[] = [];
  let restoreSink: ((line: string) => void) | undefined;

  const savedLevel = process.env.AUTODIDACT_LOG_LEVEL;

  beforeAll(async () => {
    // Info level, so the audit lines of administrative calls are among the captured lines.
    process.env.AUTODIDACT_LOG_LEVEL = "info";
    restoreSink = setLogSink((line) => logLines.push(line));
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "grpc-security-test" });
    await ensureMeshTopology(bus);
    work = await mkdtemp(join(tmpdir(), "grpc-security-"));
    pki = await createTestCertificates([]);
    registry = createRegistry(bus, { cacheDir: join(work, "cache") });
    v1 = await registerCandidate(registry, work, { lineage: "main", seed: 1, parentVersion: 0, round: 0 });
    v2 = await registerCandidate(registry, work, { lineage: "main", seed: 2, parentVersion: v1.version, round: 1 });
    await writeFile(join(work, "auth.json"), authJson);
    monitor = await startMonitor(nats.url, work, [
      "--eval-max-difficulty", "2", "--dashboard-port", "-1", "--no-consume-candidates",
      "--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--auth-file", join(work, "auth.json"), "--health-port", "0", "--log-level", "info",
    ]);
    const parsed = defineOptions({ ...serviceOptions, ...criticOptions }).parse(
      ["--nats-url", nats.url, "--kind", "rules", "--critic-id", "sec", "--grpc-host", "127.0.0.1", "--log-level", "warn",
        "--grpc-max-message", String(64 * 1024), "--auth-file", authJson],
      {},
    );
    critic = await startService(criticService, parsed.values as unknown as ServiceConfig<typeof criticOptions>);
  }, 90_000);

  afterAll(async () => {
    if (restoreSink) setLogSink(restoreSink);
    if (savedLevel === undefined) delete process.env.AUTODIDACT_LOG_LEVEL;
    else process.env.AUTODIDACT_LOG_LEVEL = savedLevel;
    await critic?.stop();
    await monitor?.stop();
    await bus?.close();
    await nats?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });

  const monitorClient = (token?: string) =>
    createClient(MonitorService, `localhost:${monitor.server.port}`, { deadlineMs: 60_000, ...clientSecurity({ tls: { ca: pki.caCert }, token }) });

  it("Promote: UNAUTHENTICATED without a token, PERMISSION_DENIED for a reader, promoted for the admin (over TLS)", async () => {
    const req = { lineage: "main", version: BigInt(v1.version), force: true, reason: "security test" };
    const anonymous = await failure(monitorClient().promote(req));
    expect(anonymous.code).toBe(Code.Unauthenticated);
    const denied = await failure(monitorClient(reader.token).promote(req));
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.rawMessage).toContain("grafana may not call autodidact.v1.MonitorService/Promote");
    expect((await registry.getPromoted("main"))).toBeUndefined();
    const res = await monitorClient(admin.token).promote(req);
    expect(res.promoted).toBe(true);
    expect((await registry.getPromoted("main"))?.version).toBe(v1.version);
    // Readers still read.
    const h = await monitorClient(reader.token).history({ lineage: "main" });
    expect(Number(h.promotedVersion)).toBe(v1.version);
    // The monitor keeps its TLS port closed to plain text, and its probe port open to kubelet.
    const plain = createClient(MonitorService, monitor.server.address, { deadlineMs: 5_000 });
    expect((await failure(plain.history({ lineage: "main" }))).code).toBe(Code.Unavailable);
    const probe = createClient(Health, `127.0.0.1:${monitor.server.healthPort}`);
    expect((await probe.check({ service: MonitorService.typeName })).status).toBe(ServingStatus.SERVING);
    plain.close();
    probe.close();
  }, 90_000);

  it("the CLI sends the admin token from --admin-token-file over TLS; without it rollback is refused", async () => {
    await monitorClient(admin.token).promote({ lineage: "main", version: BigInt(v2.version), force: true, reason: "security test" });
    const tokenFile = join(work, "admin-token");
    await writeFile(tokenFile, `${admin.token}\n`, { mode: 0o600 });
    const base = ["--monitor", `localhost:${monitor.server.port}`, "--tls-ca", pki.caCert];
    const saved = process.env.AUTODIDACT_ADMIN_TOKEN;
    delete process.env.AUTODIDACT_ADMIN_TOKEN;
    try {
      const refused = await failure(monitorCommand("rollback", [...base, String(v1.version)], () => {}));
      expect(refused.code).toBe(Code.Unauthenticated);
      let out = "";
      expect(await monitorCommand("rollback", [...base, String(v1.version), "--admin-token-file", tokenFile, "--reason", "cli"], (s) => (out += s))).toBe(0);
      expect(out).toContain(`v${v2.version} -> v${v1.version}`);
      expect((await registry.getPromoted("main"))?.version).toBe(v1.version);
    } finally {
      if (saved !== undefined) process.env.AUTODIDACT_ADMIN_TOKEN = saved;
    }
  }, 90_000);

  it("critic SwapModel is admin-only: anonymous UNAUTHENTICATED, reader PERMISSION_DENIED, admin reaches the handler", async () => {
    const dial = (token?: string) => createClient(CriticService, critic.server.address, clientSecurity({ token }));
    const req = { source: { case: "path" as const, value: "/tmp/elsewhere" } };
    expect((await failure(dial().swapModel(req))).code).toBe(Code.Unauthenticated);
    expect((await failure(dial(reader.token).swapModel(req))).code).toBe(Code.PermissionDenied);
    // Past authorization, the rules critic itself says it has no model to swap.
    const handled = await failure(dial(admin.token).swapModel(req));
    expect(handled.code).toBe(Code.FailedPrecondition);
    expect(handled.rawMessage).toContain("has no model to swap");
  });

  it("refuses an oversized message (RESOURCE_EXHAUSTED) and rejects an over-long prompt, and keeps serving", async () => {
    const client = createClient(CriticService, critic.server.address, { maxMessageBytes: 1024 * 1024, ...clientSecurity({ token: reader.token }) });
    const sample = (prompt: string, completion = "3") => create(SampleSchema, { id: `s-${prompt.length}-${completion.length}`, task: "addition", prompt, completion });
    const big = await failure(client.score({ sample: sample("1".repeat(100 * 1024) + "+2=") }));
    expect(big.code).toBe(Code.ResourceExhausted);
    expect(big.rawMessage).toMatch(/larger than max/i);
    const long = await client.score({ sample: sample("1".repeat(1000) + "+2=") });
    expect(long.approve).toBe(false);
    expect(long.reason).toMatch(/prompt has 1003 characters, task addition allows at most \d+/);
    const wordy = await client.score({ sample: sample("1+2=", "3".repeat(5000)) });
    expect(wordy.approve).toBe(false);
    expect(wordy.reason).toContain("completion has 5000 characters");
    expect((await client.score({ sample: sample("1+2=") })).approve).toBe(true);
    client.close();
  });

  it("a service with half a TLS config or a bad access list refuses to start instead of serving open", async () => {
    const start = (extra: string[]) => {
      const parsed = defineOptions({ ...serviceOptions, ...criticOptions }).parse(["--nats-url", nats.url, "--kind", "rules", ...extra], {});
      return startService(criticService, parsed.values as unknown as ServiceConfig<typeof criticOptions>);
    };
    const half = await failure(start(["--tls-cert", pki.serverCert]));
    expect(half.code).toBe(Code.InvalidArgument);
    expect(half.rawMessage).toContain("needs both --tls-cert and --tls-key");
    const plainToken = await failure(start(["--auth-file", JSON.stringify({ tokens: [{ identity: "x", token: "secret", roles: ["admin"] }] })]));
    expect(plainToken.code).toBe(Code.InvalidArgument);
    expect(plainToken.rawMessage).toContain("never the token itself");
    expect(plainToken.rawMessage).not.toContain("secret");
  });

  it("no log line of the run carries a token", () => {
    const text = logLines.join("");
    expect(text).toContain("administrative call");
    for (const t of [admin.token, reader.token]) expect(text).not.toContain(t);
  });
});
