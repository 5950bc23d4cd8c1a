/**
 * Bus throughput on loopback: publishes with message ids through `bus.publish` (PRODUCER span,
 * traceparent header, dedup) and consumes them through `consume` (CONSUMER span, ack after the
 * handler, double-ack). Run on demand: `node --import tsx bench/bus-throughput.ts [count] [inFlight]`.
 * Not part of CI; numbers depend on the machine.
 */
import { connectBus, consume, startNatsServer } from "../src/platform/bus/index.js";
import { createTestTelemetry } from "../src/platform/telemetry/index.js";
import { ensureMeshTopology, Streams, Subjects } from "../src/domain/topology/index.js";

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 5_000);
  const inFlight = Number(process.argv[3] ?? 64);
  const withSdk = process.env["BENCH_TRACING"] === "1";
  const telemetry = withSdk ? createTestTelemetry("bench") : undefined;
  const server = await startNatsServer();
  const bus = await connectBus({ servers: server.url, name: "bench" });
  try {
    await ensureMeshTopology(bus);
    const payload = new Uint8Array(512).fill(7);
    const subject = Subjects.proposed("bench");

    let t0 = performance.now();
    const window = 256;
    for (let i = 0; i < count; i += window) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + window); j++) batch.push(bus.publish(subject, payload, { msgId: `b-${j}` }));
      await Promise.all(batch);
    }
    const pubSeconds = (performance.now() - t0) / 1000;

    let handled = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    t0 = performance.now();
    const handle = await consume(
      bus,
      { stream: Streams.Samples, durable: "bench", filterSubject: subject },
      async () => {
        handled += 1;
        if (handled === count) done();
      },
      { maxInFlight: inFlight },
    );
    await all;
    await handle.stop();
    const consSeconds = (performance.now() - t0) / 1000;
    console.log(
      JSON.stringify({
        messages: count,
        bytes: payload.byteLength,
        tracing_sdk: withSdk,
        publish_per_s: Math.round(count / pubSeconds),
        consume_ack_per_s: Math.round(count / consSeconds),
        max_in_flight: inFlight,
        spans: telemetry?.spans().length,
      }),
    );
  } finally {
    await bus.close();
    await server.stop();
    await telemetry?.shutdown();
  }
}

void main();
