// One trace crosses gRPC → NATS JetStream → gRPC with correct parent/child links (real nats-server, real gRPC).
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, startNatsServer, type Bus, type NatsServerProcess } from "../src/platform/bus/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { SampleSchema, VerdictSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { createClient, createInfoHandler, createServer, implement, type RpcServer } from "../src/platform/rpc/index.js";
import { createTestTelemetry, type TestTelemetry } from "../src/platform/telemetry/index.js";
import { ensureMeshTopology, Streams, Subjects } from "../src/domain/topology/index.js";

describe("trace propagation across the mesh", () => {
  let telemetry: TestTelemetry;
  let nats: NatsServerProcess;
  let bus: Bus;
  let front: RpcServer;
  let back: RpcServer;

  beforeAll(async () => {
    telemetry = createTestTelemetry();
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: "trace-test" });
    await ensureMeshTopology(bus);
    // "back": the service the consumer calls after taking the message off NATS.
    back = await createServer({
      services: [
        implement(GeneratorService, {
          getInfo: createInfoHandler(GeneratorService, { instanceId: "back" }),
          async *generate() {
            /* not used */
          },
        }),
      ],
    });
    // "front": a Score call whose handler publishes the sample to JetStream.
    front = await createServer({
      services: [
        implement(CriticService, {
          async score(req) {
            const sample = req.sample!;
            await bus.publish(Subjects.proposed("addition"), toBinary(SampleSchema, sample), { msgId: sample.id });
            return create(VerdictSchema, { sampleId: sample.id, approve: true });
          },
          swapModel() {
            throw new Error("unused");
          },
          getAgreement() {
            throw new Error("unused");
          },
          getInfo: createInfoHandler(CriticService, { instanceId: "front" }),
        }),
      ],
    });
  });

  afterAll(async () => {
    await front?.shutdown(1_000);
    await back?.shutdown(1_000);
    await bus?.close();
    await nats?.stop();
    await telemetry?.shutdown();
  });

  it("keeps one trace id from the first call to the last, each span the child of the one before", async () => {
    const backClient = createClient(GeneratorService, back.address);
    const frontClient = createClient(CriticService, front.address);
    const consumed = new Promise<string>((resolve, reject) => {
      void consume(bus, { stream: Streams.Samples, durable: "trace-test" }, async (msg) => {
        const sample = fromBinary(SampleSchema, msg.data);
        await backClient.getInfo({});
        resolve(sample.id);
      }).catch(reject);
    });

    const tracer = trace.getTracer("trace-test");
    const rootSpan = tracer.startSpan("test-root");
    await context.with(trace.setSpan(context.active(), rootSpan), () =>
      frontClient.score({ sample: { id: "sample-1", task: "addition", prompt: "21+93=", completion: "15" } }),
    );
    rootSpan.end();
    expect(await consumed).toBe("sample-1");

    // Wait for the consumer's spans to end (the handler's own span ends after resolve()).
    const byKind = (kind: SpanKind, name: RegExp) => telemetry.spans().find((s) => s.kind === kind && name.test(s.name));
    for (let i = 0; i < 100 && !byKind(SpanKind.CONSUMER, /./); i++) await new Promise((r) => setTimeout(r, 20));

    const traceId = rootSpan.spanContext().traceId;
    const parentOf = (s: { parentSpanContext?: { spanId: string } }) => s.parentSpanContext?.spanId;
    const scoreClient = byKind(SpanKind.CLIENT, /Score/);
    const scoreServer = byKind(SpanKind.SERVER, /Score/);
    const producer = byKind(SpanKind.PRODUCER, /./);
    const consumer = byKind(SpanKind.CONSUMER, /./);
    const infoClient = byKind(SpanKind.CLIENT, /GetInfo/);
    const infoServer = byKind(SpanKind.SERVER, /GetInfo/);
    for (const span of [scoreClient, scoreServer, producer, consumer, infoClient, infoServer]) {
      expect(span).toBeDefined();
      expect(span!.spanContext().traceId).toBe(traceId);
    }
    expect(parentOf(scoreClient!)).toBe(rootSpan.spanContext().spanId);
    expect(parentOf(scoreServer!)).toBe(scoreClient!.spanContext().spanId);
    expect(parentOf(producer!)).toBe(scoreServer!.spanContext().spanId);
    expect(parentOf(consumer!)).toBe(producer!.spanContext().spanId);
    expect(parentOf(infoClient!)).toBe(consumer!.spanContext().spanId);
    expect(parentOf(infoServer!)).toBe(infoClient!.spanContext().spanId);
    backClient.close();
    frontClient.close();
  });
});
