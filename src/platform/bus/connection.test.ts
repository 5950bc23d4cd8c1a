import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { setLogSink } from "../telemetry/logger.js";
import { connectBus } from "./connection.js";
import { consume } from "./consumer.js";
import { freePort, startNatsServer, type NatsServerProcess } from "./nats-server.js";
import { TEST_TOPOLOGY, TestStreams, workSubject } from "./test-topology.js";
import { ensureTopology } from "./topology.js";

const TOKEN = "s3cret-token-value";
let server: NatsServerProcess;

beforeAll(async () => {
  server = await startNatsServer({ args: ["--auth", TOKEN] });
});

afterAll(async () => {
  await server?.stop();
});

describe("connectBus", () => {
  it("authenticates with a token and refuses without it, without leaking the token", async () => {
    const lines: string[] = [];
    const prev = setLogSink((l) => lines.push(l));
    try {
      const bus = await connectBus({ servers: server.url, name: "auth-ok", credentials: { token: TOKEN } });
      await ensureTopology(bus, TEST_TOPOLOGY);
      expect((await bus.publish(workSubject("t"), new Uint8Array([1]), { msgId: "a" })).duplicate).toBe(false);
      await bus.close();
      const err = await connectBus({ servers: server.url, name: "auth-missing" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AutodidactError);
      // A refused identity is not an outage: UNAUTHENTICATED, so nobody retries it as one.
      expect((err as AutodidactError).code).toBe(Code.Unauthenticated);
      expect((err as AutodidactError).message).not.toContain(TOKEN);
      const wrong = await connectBus({ servers: server.url, name: "auth-wrong", credentials: { token: "not-the-token" } }).catch((e: unknown) => e);
      expect((wrong as AutodidactError).code).toBe(Code.Unauthenticated);
      expect((wrong as AutodidactError).message).not.toContain("not-the-token");
    } finally {
      setLogSink(prev);
    }
    expect(lines.join("")).not.toContain(TOKEN);
  });

  it("fails fast with Unavailable and a hint when nothing listens", async () => {
    const port = await freePort();
    const err = await connectBus({ servers: `nats://127.0.0.1:${port}`, name: "nobody" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.Unavailable);
    expect((err as AutodidactError).message).toMatch(/cannot connect to NATS.*NATS_URL/);
  });

  it("close() lets in-flight handlers finish and ack before draining", async () => {
    const bus = await connectBus({ servers: server.url, name: "closer", credentials: { token: TOKEN } });
    await ensureTopology(bus, TEST_TOPOLOGY);
    let finished = false;
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const handle = await consume(
      bus,
      { stream: TestStreams.Work, durable: "close-test", filterSubject: workSubject("close") },
      async () => {
        started();
        await new Promise((r) => setTimeout(r, 200));
        finished = true;
      },
    );
    await bus.publish(workSubject("close"), new Uint8Array([1]), { msgId: "c-1" });
    await startedP;
    await bus.close();
    expect(finished).toBe(true);
    expect(handle.stats.acked).toBe(1);
    expect(bus.nc.isClosed()).toBe(true);

    const check = await connectBus({ servers: server.url, name: "checker", credentials: { token: TOKEN } });
    try {
      const info = await check.jsm.consumers.info(TestStreams.Work, "close-test");
      expect(info.num_ack_pending + info.num_pending).toBe(0);
    } finally {
      await check.close();
    }
  });
});
