// Access control and transport security of the gRPC layer, on real servers bound to port 0: bearer
// tokens and client-certificate identities, the admin-only RPC policy, TLS, mTLS and the plain-text
// health port for probes. Certificates are made with the openssl CLI in a temp folder per run.
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { ConductorService } from "../../gen/autodidact/v1/conductor_pb.js";
import { CriticService } from "../../gen/autodidact/v1/critic_pb.js";
import { MonitorService } from "../../gen/autodidact/v1/monitor_pb.js";
import { TrainerService } from "../../gen/autodidact/v1/trainer_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { createClient, createServer, implement, type CallContext, type RpcServer } from "../rpc/index.js";
import { createProbe, createTestCritic } from "../rpc/test-services.js";
import { setLogSink } from "../telemetry/index.js";
import {
  ADMIN_METHODS,
  clientSecurity,
  createAuthorizer,
  createTestCertificates,
  findToken,
  generateToken,
  loadAccessList,
  parseAccessList,
  readClientToken,
  requiredRole,
  requireRole,
  serverCredentials,
  tokenDigest,
  type AccessList,
  type TestCertificates,
} from "./index.js";

async function codeOf(promise: Promise<unknown>): Promise<{ code: Code; message: string } | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(AutodidactError);
    return { code: (err as AutodidactError).code, message: (err as AutodidactError).rawMessage };
  }
}

const sample = { sample: { id: "s-1", task: "ok", prompt: "1+2=", completion: "3" } };
const admin = generateToken("ops-alice", ["admin"]);
const reader = generateToken("dashboard", ["reader"]);
const nobody = generateToken("no-roles", []);
const access: AccessList = {
  tokens: [admin.entry, reader.entry, nobody.entry],
  certificates: [{ commonName: "ops-cert", roles: ["admin"] }],
};

/** Identity the handler saw, so tests prove ctx.principal reaches handlers. */
const whoAmI = (ctx: CallContext): string => ctx.principal?.identity ?? "(none)";

/** Stubs of the services whose administrative RPCs the policy guards (the handlers just succeed). */
const adminStubs = [
  createTestCritic(createProbe()),
  implement(MonitorService, {
    evaluate: () => ({}),
    getEvaluation: () => ({}),
    getRoundStats: () => ({}),
    promote: (_req, ctx) => ({ promoted: true, checkpoint: { lineage: whoAmI(ctx) } }),
    rollback: () => ({}),
    history: () => ({}),
    lineage: () => ({}),
    getPolicy: () => ({}),
    setPolicy: () => ({}),
    getConsensusPolicy: () => ({}),
    setConsensusPolicy: () => ({}),
    getInfo: (_req, ctx) => ({ instanceId: whoAmI(ctx) }),
  }),
  implement(TrainerService, {
    async *startRound() {
      yield { event: { case: "progress" as const, value: { phase: "collect" } } };
    },
    async *fetchCheckpoint() {},
    getInfo: () => ({}),
  }),
];

describe("access list", () => {
  it("keeps only digests, finds the entry of a presented token, and refuses malformed lists", () => {
    const list = parseAccessList(JSON.stringify({ tokens: [admin.entry, reader.entry], certificates: [{ commonName: "svc", roles: ["reader"] }] }));
    expect(findToken(list, admin.token)?.identity).toBe("ops-alice");
    expect(findToken(list, reader.token)?.roles).toEqual(["reader"]);
    expect(findToken(list, admin.token + "x")).toBeUndefined();
    expect(findToken(list, "")).toBeUndefined();
    expect(admin.entry.sha256).toBe(tokenDigest(admin.token));
    expect(JSON.stringify(list)).not.toContain(admin.token);
    const bad = [
      [{ tokens: [{ identity: "x", token: "plain", roles: ["admin"] }] }, "never the token itself"],
      [{ tokens: [{ identity: "x", sha256: "abc", roles: ["admin"] }] }, "64 hex digits"],
      [{ tokens: [{ identity: "x", sha256: admin.entry.sha256, roles: ["root"] }] }, "unknown role"],
      [{ tokens: [admin.entry, { ...admin.entry, identity: "y" }] }, "listed twice"],
      [{ users: [] }, "unknown key"],
      [{ certificates: [{ commonName: "bad name!", roles: [] }] }, "identity must be"],
    ] as const;
    for (const [json, why] of bad) {
      expect(() => parseAccessList(JSON.stringify(json)), why).toThrow(why);
    }
    expect(() => parseAccessList("{not json")).toThrow(/not valid JSON/);
    expect(loadAccessList(JSON.stringify({ tokens: [reader.entry] })).tokens).toHaveLength(1);
    expect(() => loadAccessList("/nonexistent/auth.json")).toThrow(/cannot read \/nonexistent\/auth.json \(ENOENT\)/);
  });

  it("classes every mutating RPC as admin and the rest as reader; health and reflection are open", () => {
    const admins = [
      CriticService.method.swapModel,
      MonitorService.method.promote,
      MonitorService.method.rollback,
      MonitorService.method.setPolicy,
      MonitorService.method.setConsensusPolicy,
      MonitorService.method.evaluate,
      TrainerService.method.startRound,
      ConductorService.method.createRun,
      ConductorService.method.pauseRun,
      ConductorService.method.resumeRun,
      ConductorService.method.cancelRun,
      ConductorService.method.importModel,
    ];
    for (const m of admins) expect(requiredRole(m), m.name).toBe("admin");
    expect(ADMIN_METHODS.size).toBe(admins.length);
    for (const m of [ConductorService.method.getRun, ConductorService.method.watchRun, CriticService.method.score, MonitorService.method.history, MonitorService.method.getPolicy, TrainerService.method.fetchCheckpoint]) {
      expect(requiredRole(m), m.name).toBe("reader");
    }
    expect(requiredRole(Health.method.check)).toBeUndefined();
    const method = CriticService.method.score;
    expect(() => requireRole({ method, principal: { identity: "r", roles: ["reader"], via: "token" } }, "admin", "publish")).toThrow(/r may not publish: needs role admin/);
    expect(() => requireRole({ method, principal: { identity: "a", roles: ["admin"], via: "token" } }, "admin", "publish")).not.toThrow();
    expect(() => requireRole({ method, principal: undefined }, "admin", "publish")).not.toThrow();
  });

  it("reads the client token from AUTODIDACT_ADMIN_TOKEN before the token file", () => {
    expect(readClientToken(undefined, { AUTODIDACT_ADMIN_TOKEN: " t0k " })).toBe("t0k");
    expect(readClientToken(undefined, {})).toBeUndefined();
    expect(() => readClientToken("/nonexistent/token", {})).toThrow(/cannot read \/nonexistent\/token/);
  });
});

describe("bearer-token authorization on a real server", () => {
  let server: RpcServer;
  const lines: string[] = [];
  let restoreSink: ((line: string) => void) | undefined;
  const client = <S extends typeof CriticService | typeof MonitorService | typeof TrainerService>(service: S, token?: string) =>
    createClient(service, server.address, clientSecurity({ token }));

  beforeAll(async () => {
    restoreSink = setLogSink((line) => lines.push(line));
    server = await createServer({ services: adminStubs, authorize: createAuthorizer({ access, tls: false }) });
  });
  afterAll(async () => {
    if (restoreSink) setLogSink(restoreSink);
    await server?.shutdown(1000);
  });

  it("answers UNAUTHENTICATED without credentials, PERMISSION_DENIED to a non-admin, and lets an admin through", async () => {
    const calls = {
      Promote: (t?: string) => client(MonitorService, t).promote({ version: 1n }),
      SwapModel: (t?: string) => client(CriticService, t).swapModel({ source: { case: "path", value: "/models/x" } }),
      StartRound: async (t?: string) => {
        for await (const e of client(TrainerService, t).startRound({})) return e;
      },
      SetPolicy: (t?: string) => client(MonitorService, t).setPolicy({}),
      Rollback: (t?: string) => client(MonitorService, t).rollback({}),
    };
    for (const [name, call] of Object.entries(calls)) {
      const anonymous = await codeOf(call());
      expect(anonymous, name).toMatchObject({ code: Code.Unauthenticated });
      expect((anonymous as { message: string }).message).toContain("needs credentials");
      expect(await codeOf(call("not-a-known-token")), name).toMatchObject({ code: Code.Unauthenticated, message: "unknown bearer token" });
      const denied = await codeOf(call(reader.token));
      expect(denied, name).toMatchObject({ code: Code.PermissionDenied });
      expect((denied as { message: string }).message).toContain("dashboard may not call");
      expect(await codeOf(call(nobody.token)), name).toMatchObject({ code: Code.PermissionDenied });
      expect(await codeOf(call(admin.token)), name).toBe("ok");
    }
    // The handler sees who called.
    expect((await client(MonitorService, admin.token).promote({ version: 1n })).checkpoint?.lineage).toBe("ops-alice");
  });

  it("lets readers read, refuses role-less identities, and keeps health open", async () => {
    expect((await client(MonitorService, reader.token).getInfo({})).instanceId).toBe("dashboard");
    expect((await client(CriticService, reader.token).score(sample)).approve).toBe(true);
    expect(await codeOf(client(CriticService).score(sample))).toMatchObject({ code: Code.Unauthenticated });
    expect(await codeOf(client(CriticService, nobody.token).score(sample))).toMatchObject({ code: Code.PermissionDenied });
    const health = createClient(Health, server.address);
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    health.close();
    const raw = createClient(CriticService, server.address, { metadata: { authorization: `Basic ${admin.token}` } });
    expect(await codeOf(raw.score(sample))).toMatchObject({ code: Code.Unauthenticated, message: expect.stringContaining("expected one `Bearer <token>`") });
  });

  it("never writes a token into the logs, but names the identity of administrative calls", async () => {
    lines.length = 0;
    await client(MonitorService, admin.token).promote({ version: 2n });
    await codeOf(client(MonitorService, reader.token).promote({ version: 2n }));
    await codeOf(client(MonitorService, `${admin.token}x`).promote({ version: 2n }));
    const text = lines.join("");
    expect(text).toContain("administrative call");
    expect(text).toContain("ops-alice");
    expect(text).toContain("call refused");
    for (const t of [admin.token, reader.token, admin.entry.sha256]) expect(text).not.toContain(t);
  });
});

describe("TLS and mutual TLS", () => {
  let pki: TestCertificates;
  beforeAll(async () => {
    pki = await createTestCertificates(["ops-cert", "viewer-cert"]);
  }, 30_000);
  afterAll(async () => {
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });

  it("serves over TLS end to end and refuses plain-text clients and untrusted servers", async () => {
    const server = await createServer({
      services: [createTestCritic(createProbe())],
      credentials: serverCredentials({ cert: pki.serverCert, key: pki.serverKey })!,
      healthPort: 0,
    });
    try {
      const tls = createClient(CriticService, `localhost:${server.port}`, clientSecurity({ tls: { ca: pki.caCert } }));
      expect((await tls.score(sample)).approve).toBe(true);
      // Dialled by IP, the certificate is checked against the name given.
      const byIp = createClient(CriticService, server.address, clientSecurity({ tls: { ca: pki.caCert, serverName: "localhost" } }));
      expect((await byIp.score(sample)).approve).toBe(true);
      const plain = createClient(CriticService, server.address, { deadlineMs: 5_000 });
      expect(await codeOf(plain.score(sample))).toMatchObject({ code: Code.Unavailable });
      const wrongTrust = createClient(CriticService, `localhost:${server.port}`, { deadlineMs: 5_000, ...clientSecurity({ tls: { ca: pki.otherCaCert } }) });
      expect(await codeOf(wrongTrust.score(sample))).toMatchObject({ code: Code.Unavailable });
      // Kubelet probes cannot speak TLS: the health-only port answers in plain text, and only health.
      expect(server.healthPort).toBeGreaterThan(0);
      const probe = createClient(Health, `127.0.0.1:${server.healthPort}`);
      expect((await probe.check({ service: CriticService.typeName })).status).toBe(ServingStatus.SERVING);
      const sneaky = createClient(CriticService, `127.0.0.1:${server.healthPort}`);
      expect(await codeOf(sneaky.score(sample))).toMatchObject({ code: Code.Unimplemented });
      for (const c of [tls, byIp, plain, wrongTrust, probe, sneaky]) c.close();
    } finally {
      await server.shutdown(1000);
    }
  });

  it("with a client CA refuses clients without a trusted certificate and takes the certificate's name as identity", async () => {
    const server = await createServer({
      services: adminStubs,
      credentials: serverCredentials({ cert: pki.serverCert, key: pki.serverKey, clientCa: pki.caCert })!,
      authorize: createAuthorizer({ access, tls: true }),
    });
    const dial = (tls: Parameters<typeof clientSecurity>[0]["tls"], token?: string) =>
      createClient(MonitorService, `localhost:${server.port}`, { deadlineMs: 5_000, ...clientSecurity({ tls, token }) });
    try {
      expect(await codeOf(dial({ ca: pki.caCert }).getInfo({}))).toMatchObject({ code: Code.Unavailable });
      expect(await codeOf(dial({ ca: pki.caCert, cert: pki.intruderCert, key: pki.intruderKey }).getInfo({}))).toMatchObject({ code: Code.Unavailable });
      const ops = dial({ ca: pki.caCert, cert: pki.clientCert("ops-cert"), key: pki.clientKey("ops-cert") });
      expect((await ops.promote({ version: 1n })).checkpoint?.lineage).toBe("ops-cert");
      // A verified certificate without an access-list entry is authenticated but holds no role.
      const viewer = dial({ ca: pki.caCert, cert: pki.clientCert("viewer-cert"), key: pki.clientKey("viewer-cert") });
      expect(await codeOf(viewer.getInfo({}))).toMatchObject({ code: Code.PermissionDenied, message: expect.stringContaining("viewer-cert may not call") });
      // A token presented over the mutual-TLS connection decides the identity.
      const viewerWithToken = dial({ ca: pki.caCert, cert: pki.clientCert("viewer-cert"), key: pki.clientKey("viewer-cert") }, admin.token);
      expect((await viewerWithToken.promote({ version: 1n })).checkpoint?.lineage).toBe("ops-alice");
    } finally {
      await server.shutdown(1000);
    }
  });

  it("refuses half-configured or unreadable TLS material with a clear message", () => {
    expect(() => serverCredentials({ cert: pki.serverCert })).toThrow(/needs both --tls-cert and --tls-key/);
    expect(() => serverCredentials({ clientCa: pki.caCert })).toThrow(/needs both --tls-cert and --tls-key/);
    expect(() => serverCredentials({ cert: "/nonexistent.pem", key: pki.serverKey })).toThrow(/--tls-cert: cannot read \/nonexistent.pem \(ENOENT\)/);
    expect(() => serverCredentials({ cert: pki.dir + "/server.ext", key: pki.serverKey })).toThrow(/holds no PEM block/);
    expect(() => clientSecurity({ tls: { cert: pki.clientCert("ops-cert") } })).toThrow(/needs both --tls-cert and --tls-key/);
    expect(() => clientSecurity({ tls: { serverName: "localhost" } })).toThrow(/only applies with TLS/);
  });
});
