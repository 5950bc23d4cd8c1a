import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanKind, trace, context as otelContext } from "@opentelemetry/api";
import { AutodidactError, Code } from "../errors/index.js";
import { createTestTelemetry, type TestTelemetry } from "../telemetry/test-telemetry.js";
import { connectBus, type Bus } from "./connection.js";
import { consume, consumerLag, type BusMessage, type ConsumerHandle, type PoisonRecord } from "./consumer.js";
import { startNatsServer, type NatsServerProcess } from "./nats-server.js";
import { TEST_TOPOLOGY, TestStreams, workSubject } from "./test-topology.js";
import { ensureTopology } from "./topology.js";

let server: NatsServerProcess;
let bus: Bus;
let telemetry: TestTelemetry;
const enc = new TextEncoder();
const dec = new TextDecoder();

beforeAll(async () => {
  telemetry = createTestTelemetry("consumer-test");
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "consumer-test", timeoutMs: 3_000 });
  await ensureTopology(bus, TEST_TOPOLOGY);
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
  await telemetry?.shutdown();
});

/** Resolves once `predicate` holds, polling; rejects with `what` after 20 s. */
async function until(what: string, predicate: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 20_000;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function withConsumer<T>(handle: ConsumerHandle, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await handle.stop();
  }
}

describe("consume", () => {
  it("acks only after the handler resolves; a retryable failure is redelivered", async () => {
    const task = "retry";
    const seen: Array<{ id: string | undefined; delivery: number }> = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "retry-test", filterSubject: workSubject(task), maxDeliver: 5 },
      async (m) => {
        seen.push({ id: m.msgId, delivery: m.deliveryCount });
        if (m.deliveryCount === 1) throw new Error("model busy");
        await gate;
      },
      { retryDelayMs: () => 50 },
    );
    await withConsumer(handle, async () => {
      await bus.publish(workSubject(task), enc.encode("x"), { msgId: "retry-1" });
      await until("the redelivery", () => seen.length >= 2);
      // The second delivery is still inside the handler: nothing may be acked yet.
      const lag = await consumerLag(bus, TestStreams.Work, "retry-test");
      expect(lag.ackPending).toBe(1);
      expect(handle.stats.acked).toBe(0);
      release();
      await until("the ack", () => handle.stats.acked === 1);
      await until("an empty backlog", async () => (await consumerLag(bus, TestStreams.Work, "retry-test")).total === 0);
    });
    expect(seen).toEqual([
      { id: "retry-1", delivery: 1 },
      { id: "retry-1", delivery: 2 },
    ]);
    expect(handle.stats.retried).toBe(1);
  });

  it("terminates a poison message, records it on poison.<stream>, and never redelivers it", async () => {
    const task = "poison";
    const deliveries = new Map<string, number>();
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "poison-test", filterSubject: workSubject(task), maxDeliver: 3 },
      async (m) => {
        deliveries.set(m.msgId ?? "", (deliveries.get(m.msgId ?? "") ?? 0) + 1);
        if (m.msgId === "always-fails") throw new Error("flaky forever");
        m.json<unknown>(); // malformed JSON -> InvalidArgument -> poison at once
      },
      { retryDelayMs: () => 20 },
    );
    await withConsumer(handle, async () => {
      await bus.publish(workSubject(task), enc.encode("{not json"), { msgId: "malformed" });
      await bus.publish(workSubject(task), enc.encode("{}"), { msgId: "always-fails" });
      await bus.publish(workSubject(task), enc.encode('{"ok":true}'), { msgId: "fine" });
      await until("two poison records", async () => (await bus.jsm.streams.info(TestStreams.Poison)).state.messages >= 2);
      await until("an empty backlog", async () => (await consumerLag(bus, TestStreams.Work, "poison-test")).total === 0);
      // Give a would-be redelivery time to show up.
      await new Promise((r) => setTimeout(r, 300));
    });
    expect(deliveries.get("malformed")).toBe(1);
    expect(deliveries.get("always-fails")).toBe(3);
    expect(deliveries.get("fine")).toBe(1);
    expect(handle.stats.poisoned).toBe(2);

    const records: PoisonRecord[] = [];
    for (let seq = 1; ; seq++) {
      const m = await bus.jsm.streams.getMessage(TestStreams.Poison, { seq }).catch(() => null);
      if (m === null) break;
      records.push(JSON.parse(dec.decode(m.data)) as PoisonRecord);
    }
    const byId = new Map(records.map((r) => [r.msgId, r]));
    expect(byId.get("malformed")?.code).toBe("invalid_argument");
    expect(Buffer.from(byId.get("malformed")?.dataBase64 ?? "", "base64").toString()).toBe("{not json");
    expect(byId.get("always-fails")?.reason).toMatch(/gave up after 3 deliveries/);

    const outcome = (o: string) => telemetry.metricValue("autodidact.bus.consumed", { durable: "poison-test", outcome: o });
    expect(await outcome("term")).toBe(2);
    expect(await outcome("nak")).toBe(2);
    expect(await outcome("ack")).toBe(1);
  });

  it("splits the messages of one durable between two consumers, each handled exactly once", async () => {
    const task = "split";
    const handledBy = new Map<string, string[]>();
    const make = (who: string) => async (m: BusMessage) => {
      await new Promise((r) => setTimeout(r, 5));
      handledBy.set(m.msgId ?? "", [...(handledBy.get(m.msgId ?? "") ?? []), who]);
    };
    const spec = { stream: TestStreams.Work, durable: "split-test", filterSubject: workSubject(task) };
    // Two replicas: separate connections, as separate processes would have.
    const replica = await connectBus({ servers: server.url, name: "consumer-test-replica" });
    const a = await consume(bus, spec, make("a"), { maxInFlight: 2 });
    const b = await consume(replica, spec, make("b"), { maxInFlight: 2 });
    const n = 60;
    try {
      await Promise.all(
        Array.from({ length: n }, (_, i) => bus.publish(workSubject(task), enc.encode(String(i)), { msgId: `s-${i}` })),
      );
      await until("all messages handled", () => handledBy.size === n && a.stats.acked + b.stats.acked === n);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await replica.close();
    }
    for (const [id, who] of handledBy) expect(who, id).toHaveLength(1);
    expect(a.stats.acked).toBeGreaterThan(0);
    expect(b.stats.acked).toBeGreaterThan(0);
    expect(a.stats.acked + b.stats.acked).toBe(n);
  });

  it("never runs more handlers at once than maxInFlight", async () => {
    const task = "inflight";
    let running = 0;
    let peak = 0;
    let done = 0;
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "inflight-test", filterSubject: workSubject(task) },
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 10));
        running -= 1;
        done += 1;
      },
      { maxInFlight: 3 },
    );
    await withConsumer(handle, async () => {
      for (let i = 0; i < 20; i++) await bus.publish(workSubject(task), enc.encode("x"), { msgId: `f-${i}` });
      await until("all handled", () => done === 20);
    });
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
  });

  it("carries the trace from publish to the consumer span", async () => {
    const task = "trace";
    telemetry.reset();
    let handlerTraceId = "";
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "trace-test", filterSubject: workSubject(task) },
      async () => {
        handlerTraceId = trace.getActiveSpan()?.spanContext().traceId ?? "";
      },
    );
    const root = trace.getTracer("test").startSpan("generate");
    await withConsumer(handle, async () => {
      await otelContext.with(trace.setSpan(otelContext.active(), root), () =>
        bus.publish(workSubject(task), enc.encode("x"), { msgId: "traced-1" }),
      );
      root.end();
      await until("the consumer span", () => telemetry.spansNamed(`process ${workSubject(task)}`).length === 1);
    });
    const producer = telemetry.spansNamed(`publish ${workSubject(task)}`)[0];
    const consumer = telemetry.spansNamed(`process ${workSubject(task)}`)[0];
    expect(producer?.kind).toBe(SpanKind.PRODUCER);
    expect(consumer?.kind).toBe(SpanKind.CONSUMER);
    expect(producer?.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(consumer?.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(consumer?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
    expect(handlerTraceId).toBe(root.spanContext().traceId);
  });

  it("keeps consuming across a nats-server restart", async () => {
    const task = "restart";
    const got: string[] = [];
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "restart-test", filterSubject: workSubject(task) },
      async (m) => {
        got.push(m.msgId ?? "");
      },
      { pullExpiresMs: 1_000 },
    );
    await withConsumer(handle, async () => {
      await bus.publish(workSubject(task), enc.encode("a"), { msgId: "before" });
      await until("the first message", () => got.includes("before"));
      await server.restart();
      // Published while the client may still be reconnecting: the retry with the same id covers it.
      await bus.publish(workSubject(task), enc.encode("b"), { msgId: "after" });
      await until("the message published after the restart", () => got.includes("after"));
    });
    expect(got.filter((id) => id === "before")).toHaveLength(1);
    expect(got.filter((id) => id === "after")).toHaveLength(1);
  });

  it("rejects a consumer on a stream that does not exist", async () => {
    const err = await consume(bus, { stream: "NOPE", durable: "x" }, async () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
  });
});

describe("consume extras", () => {
  it("keeps a long handler's message from being redelivered (in-progress acks)", async () => {
    const task = "slow";
    let deliveries = 0;
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "slow-test", filterSubject: workSubject(task), ackWaitMs: 300 },
      async () => {
        deliveries += 1;
        await new Promise((r) => setTimeout(r, 1_200));
      },
      { maxInFlight: 2 },
    );
    await withConsumer(handle, async () => {
      await bus.publish(workSubject(task), enc.encode("x"), { msgId: "slow-1" });
      await until("the ack", () => handle.stats.acked === 1);
    });
    expect(deliveries).toBe(1);
  });

  it("waitForLagBelow resolves once consumers catch up", async () => {
    const task = "lag";
    const spec = { stream: TestStreams.Work, durable: "lag-test", filterSubject: workSubject(task) };
    for (let i = 0; i < 5; i++) await bus.publish(workSubject(task), enc.encode("x"), { msgId: `lag-${i}` });
    const { ensureConsumer, waitForLagBelow } = await import("./consumer.js");
    await ensureConsumer(bus, spec);
    expect((await consumerLag(bus, TestStreams.Work, "lag-test")).pending).toBe(5);
    const aborted = new AbortController();
    aborted.abort();
    const err = await waitForLagBelow(bus, TestStreams.Work, "lag-test", 2, { signal: aborted.signal }).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.Canceled);
    const handle = await consume(bus, spec, async () => undefined);
    await withConsumer(handle, async () => {
      const lag = await waitForLagBelow(bus, TestStreams.Work, "lag-test", 2, { pollMs: 20 });
      expect(lag.total).toBeLessThan(2);
    });
  });
});

describe("consume ack modes and refill", () => {
  it("fast acks settle every message on the server, and survive a stop right after handling", async () => {
    const task = "fast-ack";
    const seen = new Set<string>();
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "fast-ack-test", filterSubject: workSubject(task) },
      async (m) => {
        seen.add(m.msgId ?? "");
      },
      { maxInFlight: 4, ackMode: "fast" },
    );
    await withConsumer(handle, async () => {
      for (let i = 0; i < 20; i++) await bus.publish(workSubject(task), enc.encode("x"), { msgId: `fast-${i}` });
      await until("every message handled", () => handle.stats.acked === 20);
    });
    // stop() flushed the plain acks: nothing is left pending or awaiting an ack on the durable.
    await until("an empty backlog", async () => (await consumerLag(bus, TestStreams.Work, "fast-ack-test")).total === 0);
    expect(seen.size).toBe(20);
    expect(handle.stats.retried).toBe(0);
  });

  it("rejects an unknown ack mode with InvalidArgument", async () => {
    const err = await consume(
      bus,
      { stream: TestStreams.Work, durable: "bad-ack-mode", filterSubject: workSubject("bad-ack-mode") },
      async () => undefined,
      { ackMode: "sometimes" as never },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
  });

  it("refills in batches without exceeding maxInFlight and handles every message once", async () => {
    const task = "refill";
    const seen: string[] = [];
    let running = 0;
    let peak = 0;
    // Published before the consumer starts, so the backlog can fill every slot.
    for (let i = 0; i < 40; i++) await bus.publish(workSubject(task), enc.encode("x"), { msgId: `refill-${i}` });
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "refill-test", filterSubject: workSubject(task) },
      async (m) => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
        seen.push(m.msgId ?? "");
      },
      { maxInFlight: 8, refillBelow: 2, ackMode: "fast" },
    );
    await withConsumer(handle, async () => {
      await until("every message handled", () => handle.stats.acked === 40);
    });
    expect(new Set(seen).size).toBe(40);
    expect(seen.length).toBe(40);
    expect(peak).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThan(1);
  });
});
