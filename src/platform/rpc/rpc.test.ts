import { Client, Metadata, credentials, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { CriticService } from "../../gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../gen/autodidact/v1/generator_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { freePort } from "../bus/nats-server.js";
import { createClient, createServer, type RpcServer } from "./index.js";
import { createProbe, createTestCritic, createTestGenerator, type Probe } from "./test-services.js";

/** Raw unary call with identity codecs: sends exactly `bytes`, returns the raw reply or the error. */
function rawCall(address: string, path: string, bytes: Buffer): Promise<{ error: ServiceError | null; reply?: Buffer }> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, reply) => {
        client.close();
        resolve({ error, reply });
      },
    );
  });
}

async function expectCode(promise: Promise<unknown>, code: Code): Promise<AutodidactError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AutodidactError);
  expect((error as AutodidactError).code).toBe(code);
  return error as AutodidactError;
}

const sample = (task: string, extra: Record<string, unknown> = {}) => ({
  sample: { id: "11111111-2222-3333-4444-555555555555", task, prompt: "12+30=", completion: "42", tokenLogprobs: [-0.5, -0.25], ...extra },
});

describe("rpc server and client", () => {
  let probe: Probe;
  let server: RpcServer;
  const internalErrors: unknown[] = [];
  let critic: ReturnType<typeof createClient<typeof CriticService>>;

  beforeAll(async () => {
    probe = createProbe();
    server = await createServer({
      services: [createTestCritic(probe), createTestGenerator(probe)],
      port: 0,
      maxMessageBytes: 64 * 1024,
      onInternalError: (e) => internalErrors.push(e),
    });
    critic = createClient(CriticService, server.address, { maxMessageBytes: 8 * 1024 * 1024 });
  });
  afterAll(async () => {
    critic.close();
    await server.shutdown(1000);
  });

  it("serves a unary call with typed messages", async () => {
    const verdict = await critic.score(sample("ok"));
    expect(server.port).toBeGreaterThan(0);
    expect(verdict.sampleId).toBe("11111111-2222-3333-4444-555555555555");
    expect(verdict.approve).toBe(true);
    expect(verdict.score).toBeCloseTo(-0.75);
    expect(verdict.reason).toBe("prompt had 6 chars");
    const swapped = await critic.swapModel({ source: { case: "checkpointVersion", value: 7n } });
    expect(swapped.newVersion).toBe("7");
  });

  it("answers GetInfo with the service's identity, version and current models", async () => {
    const before = probe.scored;
    const info = await critic.getInfo({});
    expect(info.serviceName).toBe("autodidact.v1.CriticService");
    expect(info.instanceId).toBe("critic-test");
    expect(info.softwareVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.tasks).toEqual(["addition"]);
    expect(info.models[0]?.version).toBe(`main@${before}`);
    await critic.score(sample("ok"));
    const after = await critic.getInfo({});
    expect(after.models[0]?.checkpointVersion).toBe(BigInt(before + 1));
    expect(after.uptimeMs >= info.uptimeMs).toBe(true);
    expect(after.startedAt?.seconds).toBe(info.startedAt?.seconds);
  });

  it("answers a malformed request with INVALID_ARGUMENT and keeps serving", async () => {
    // Field 1 (sample, length-delimited) claims 127 bytes but only one follows: a truncated message.
    const { error } = await rawCall(server.address, "/autodidact.v1.CriticService/Score", Buffer.from([0x0a, 0x7f, 0x01]));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toContain("autodidact.v1.ScoreRequest");
    // Invalid wire type 7 in the first tag.
    const second = await rawCall(server.address, "/autodidact.v1.CriticService/Score", Buffer.from([0x0f, 0xff, 0xff]));
    expect(second.error?.code).toBe(status.INVALID_ARGUMENT);
    expect((await critic.score(sample("ok"))).approve).toBe(true);
  });

  it("rejects an oversized request with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const before = probe.scored;
    await expectCode(critic.score(sample("ok", { prompt: "9".repeat(200 * 1024) })), Code.ResourceExhausted);
    expect(probe.scored).toBe(before);
    expect((await critic.score(sample("ok"))).approve).toBe(true);
  });

  it("refuses to send an oversized response (RESOURCE_EXHAUSTED) and keeps serving", async () => {
    await expectCode(critic.score(sample(`big:${100 * 1024}`)), Code.ResourceExhausted);
    const small = await critic.score(sample("big:10"));
    expect(small.reason).toBe("x".repeat(10));
  });

  it("round-trips every AutodidactError code to the client", async () => {
    const codes = Object.values(Code).filter((v): v is Code => typeof v === "number");
    expect(codes.length).toBe(16);
    for (const code of codes) {
      const error = await expectCode(critic.score(sample(`code:${code}`)), code);
      expect(error.rawMessage).toBe(`failure with code ${code}`);
      expect(error.details.method).toBe("autodidact.v1.CriticService/Score");
    }
    await expectCode(critic.getAgreement({}), Code.FailedPrecondition);
  });

  it("turns a non-Autodidact error into INTERNAL without leaking its message", async () => {
    const error = await expectCode(critic.score(sample("crash")), Code.Internal);
    expect(error.message).not.toContain("secret");
    expect(error.message).not.toContain("model.onnx");
    expect(internalErrors.some((e) => e instanceof Error && e.message.includes("secret"))).toBe(true);
  });

  it("fires the deadline on a handler that never answers and aborts the handler", async () => {
    const own = createProbe();
    const ownServer = await createServer({ services: [createTestCritic(own)] });
    const client = createClient(CriticService, ownServer.address);
    const call = client.score(sample("hang"), { deadlineMs: 1000 });
    await own.entered.promise;
    await expectCode(call, Code.DeadlineExceeded);
    await own.aborted.promise; // the handler saw its signal abort
    client.close();
    await ownServer.shutdown(1000);
    const quick = createClient(CriticService, server.address, { deadlineMs: 100 });
    await expectCode(quick.score(sample("hang")), Code.DeadlineExceeded);
    quick.close();
  });

  it("cancels a call through an AbortSignal", async () => {
    const controller = new AbortController();
    const pending = critic.score(sample("hang"), { signal: controller.signal, deadlineMs: Infinity });
    setImmediate(() => controller.abort());
    await expectCode(pending, Code.Canceled);
  });

  it("streams a server-streaming method, and maps a mid-stream error", async () => {
    const generator = createClient(GeneratorService, server.address);
    const ids: string[] = [];
    for await (const s of generator.generate({ task: "addition", count: 5, difficulty: 3, seed: 10n })) {
      ids.push(s.id);
      expect(s.difficulty).toBe(3);
    }
    expect(ids).toEqual(["s-0", "s-1", "s-2", "s-3", "s-4"]);

    const got: string[] = [];
    const failing = (async () => {
      for await (const s of generator.generate({ count: 5, difficulty: -1 })) got.push(s.id);
    })();
    const error = await expectCode(failing, Code.Aborted);
    expect(error.rawMessage).toBe("generator lost its model");
    expect(got).toEqual(["s-0", "s-1"]);
    generator.close();
  });

  it("cancels the server side when the client stops reading a stream early", async () => {
    const local = createProbe();
    const own = await createServer({ services: [createTestGenerator(local)] });
    const generator = createClient(GeneratorService, own.address);
    let n = 0;
    for await (const s of generator.generate({ count: 0 })) {
      expect(s.id).toBe(`s-${n}`);
      if (++n === 3) break;
    }
    await local.aborted.promise;
    generator.close();
    await own.shutdown(1000);
  });

  it("answers health Check and Watch, following status changes", async () => {
    const health = createClient(Health, server.address);
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "autodidact.v1.CriticService" })).status).toBe(ServingStatus.SERVING);
    await expectCode(health.check({ service: "no.such.Service" }), Code.NotFound);

    const seen: ServingStatus[] = [];
    const controller = new AbortController();
    const watching = (async () => {
      for await (const r of health.watch({ service: "autodidact.v1.GeneratorService" }, { signal: controller.signal, deadlineMs: Infinity })) {
        seen.push(r.status);
        if (seen.length === 1) server.health.setStatus(GeneratorService, ServingStatus.NOT_SERVING);
        if (seen.length === 2) break;
      }
    })();
    await watching;
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);

    server.health.setStatus(CriticService, ServingStatus.NOT_SERVING);
    expect((await health.check({ service: "autodidact.v1.CriticService" })).status).toBe(ServingStatus.NOT_SERVING);
    server.health.setStatus(CriticService, ServingStatus.SERVING);
    server.health.setStatus(GeneratorService, ServingStatus.SERVING);
    expect((await health.check({ service: "autodidact.v1.CriticService" })).status).toBe(ServingStatus.SERVING);
    health.close();
  });

  it("lists services and serves file descriptors through reflection v1 and v1alpha", async () => {
    const reflection = createClient(ServerReflection, server.address);
    async function* requests() {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "autodidact.v1.CriticService.Score" } };
      yield { messageRequest: { case: "fileByFilename" as const, value: "grpc/health/v1/health.proto" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "autodidact.v1.NoSuchThing" } };
    }
    const responses = [];
    for await (const r of reflection.serverReflectionInfo(requests())) responses.push(r);
    expect(responses).toHaveLength(4);

    const [list, symbol, byName, missing] = responses;
    expect(list?.messageResponse.case).toBe("listServicesResponse");
    const names = list?.messageResponse.case === "listServicesResponse" ? list.messageResponse.value.service.map((s) => s.name) : [];
    expect(names).toEqual(
      expect.arrayContaining([
        "autodidact.v1.CriticService",
        "autodidact.v1.GeneratorService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );

    expect(symbol?.messageResponse.case).toBe("fileDescriptorResponse");
    const files =
      symbol?.messageResponse.case === "fileDescriptorResponse"
        ? symbol.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b))
        : [];
    expect(files[0]?.name).toBe("autodidact/v1/critic.proto");
    expect(files[0]?.service.map((s) => s.name)).toEqual(["CriticService"]);
    expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(["autodidact/v1/sample.proto", "google/protobuf/timestamp.proto"]));

    // The returned files are complete: a registry built from them alone resolves the method's types.
    // (Ordered dependencies first, as FileDescriptorSet consumers expect; reflection sends the asked file first.)
    const ordered: typeof files = [];
    const visit = (name: string): void => {
      const file = files.find((f) => f.name === name);
      if (!file || ordered.includes(file)) return;
      file.dependency.forEach(visit);
      ordered.push(file);
    };
    visit(files[0]!.name);
    expect(ordered).toHaveLength(files.length);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    const score = registry.getService("autodidact.v1.CriticService")?.methods.find((m) => m.name === "Score");
    expect(score?.input.typeName).toBe("autodidact.v1.ScoreRequest");
    expect(score?.output.fields.map((f) => f.name)).toContain("critic_model_version");

    expect(byName?.messageResponse.case).toBe("fileDescriptorResponse");
    expect(missing?.messageResponse.case).toBe("errorResponse");
    if (missing?.messageResponse.case === "errorResponse") expect(missing.messageResponse.value.errorCode).toBe(Code.NotFound);
    reflection.close();

    const alpha = createClient(ServerReflectionV1Alpha, server.address);
    const alphaResponses = [];
    for await (const r of alpha.serverReflectionInfo([{ messageRequest: { case: "listServices" as const, value: "*" } }][Symbol.iterator]() as never)) {
      alphaResponses.push(r);
    }
    alpha.close();
    expect(alphaResponses[0]?.messageResponse.case).toBe("listServicesResponse");
  });

  it("answers a malformed message inside a bidi stream with INVALID_ARGUMENT", async () => {
    const raw = new Client(server.address, credentials.createInsecure());
    const call = raw.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (b: Buffer) => b,
      (b: Buffer) => b,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    const outcome = new Promise<{ code: number; details: string }>((resolve) => call.on("status", resolve));
    call.on("data", () => {});
    call.on("error", () => {});
    call.write(Buffer.from([0x3a, 0x7f])); // list_services (field 7) with a length past the end
    call.end();
    const st = await outcome;
    raw.close();
    expect(st.code).toBe(status.INVALID_ARGUMENT);
    expect(st.details).toContain("grpc.reflection.v1.ServerReflectionRequest");
    expect((await critic.score(sample("ok"))).approve).toBe(true);
  });

  it("answers an over-limit message inside a bidi stream with RESOURCE_EXHAUSTED, not as an internal error", async () => {
    const before = internalErrors.length;
    const raw = new Client(server.address, credentials.createInsecure());
    const call = raw.makeBidiStreamRequest("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", (b: Buffer) => b, (b: Buffer) => b, new Metadata(), { deadline: Date.now() + 10_000 });
    const outcome = new Promise<{ code: number; details: string }>((resolve) => call.on("status", resolve));
    call.on("data", () => {});
    call.on("error", () => {});
    call.write(Buffer.alloc(100 * 1024, 0x42)); // over the server's 64 KiB limit
    call.end();
    const st = await outcome;
    raw.close();
    expect(st.code).toBe(status.RESOURCE_EXHAUSTED);
    await new Promise((r) => setTimeout(r, 200)); // the handler sees the cut stream after the status went out
    expect(internalErrors.slice(before)).toEqual([]);
    expect((await critic.score(sample("ok"))).approve).toBe(true);
  });

  it("runs the authorize hook before handlers", async () => {
    const own = await createServer({
      services: [createTestCritic(createProbe())],
      authorize: (ctx) => {
        if (ctx.method.parent.typeName === "grpc.health.v1.Health") return;
        if (ctx.metadata.get("authorization")[0] !== "Bearer letmein") {
          throw new AutodidactError("missing or wrong token", Code.Unauthenticated);
        }
      },
    });
    const client = createClient(CriticService, own.address);
    await expectCode(client.score(sample("ok")), Code.Unauthenticated);
    const verdict = await client.score(sample("ok"), { metadata: { authorization: "Bearer letmein" } });
    expect(verdict.approve).toBe(true);
    const health = createClient(Health, own.address);
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    client.close();
    health.close();
    await own.shutdown(1000);
  });
});

describe("waiting for a server", () => {
  it("fails fast by default but waits for a server that comes up when asked to", async () => {
    const port = await freePort();
    const client = createClient(CriticService, `127.0.0.1:${port}`, { deadlineMs: 20_000 });
    await expectCode(client.score(sample("ok")), Code.Unavailable);
    const pending = client.score(sample("ok"), { waitForReady: true });
    const server = await createServer({ services: [createTestCritic(createProbe())], port });
    expect(server.port).toBe(port);
    expect((await pending).approve).toBe(true);
    client.close();
    await server.shutdown(1000);
  });
});

describe("graceful shutdown", () => {
  it("lets an in-flight call complete, refuses new ones, and reports NOT_SERVING", async () => {
    const probe = createProbe();
    const server = await createServer({ services: [createTestCritic(probe)] });
    const client = createClient(CriticService, server.address);
    const inFlight = client.score(sample("gate"));
    await probe.entered.promise;
    const stopped = server.shutdown(30_000);
    expect(server.health.getStatus(CriticService)).toBe(ServingStatus.NOT_SERVING);
    const late = createClient(CriticService, server.address, { deadlineMs: 2000 });
    await expectCode(late.score(sample("ok")), Code.Unavailable);
    probe.release.open();
    const verdict = await inFlight;
    expect(verdict.criticId).toBe("test-critic");
    await stopped;
    client.close();
    late.close();
  });

  it("cancels calls still running when the grace period ends", async () => {
    const probe = createProbe();
    const server = await createServer({ services: [createTestCritic(probe)] });
    const client = createClient(CriticService, server.address);
    const hanging = client.score(sample("hang"), { deadlineMs: Infinity });
    const outcome = hanging.then(
      () => undefined,
      (e: unknown) => e,
    );
    await probe.entered.promise;
    await server.shutdown(100);
    await probe.aborted.promise;
    const error = await outcome;
    expect(error).toBeInstanceOf(AutodidactError);
    expect([Code.Unavailable, Code.Canceled, Code.Internal]).toContain((error as AutodidactError).code);
    client.close();
  });
});
