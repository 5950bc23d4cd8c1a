/**
 * Consensus throughput on loopback: N samples with three verdicts each are stored first, then W
 * consensus workers sharing one durable decide them (2-of-3 policy), one decision message per sample.
 * Run on demand: `node --import tsx bench/consensus-throughput.ts [samples] [workers] [concurrency]`
 * (`SWEEP_MS` overrides the sweep interval). Prints decided/s, the JetStream requests per sample by
 * kind (acks, KV writes, KV reads, pulls, decision publishes) and the event-loop utilization of this
 * process (near 1: its CPU is the limit). Not part of CI; numbers depend on the machine.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { connectBus, startNatsServer } from "../src/platform/bus/index.js";
import { createConsensusPolicy } from "../src/domain/consensus/index.js";
import { createConsensusWorker } from "../services/consensus/index.js";
import { SampleSchema, VerdictSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { ensureMeshTopology, Subjects } from "../src/domain/topology/index.js";

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2_000);
  const workers = Number(process.argv[3] ?? 1);
  const concurrency = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
  const server = await startNatsServer();
  const bus = await connectBus({ servers: server.url, name: "bench-consensus" });
  try {
    await ensureMeshTopology(bus);
    const task = "bench";
    const critics = ["a", "b", "c"];
    const policy = createConsensusPolicy({ version: 1, kind: "k_of_n", k: 2, expected: critics, timeoutMs: 600_000, onTimeout: "reject" });
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < count; i++) {
      const id = `s-${i}`;
      const sample = create(SampleSchema, { id, task, prompt: "21+93=", completion: "15", difficulty: 2 });
      pending.push(bus.publish(Subjects.proposed(task), toBinary(SampleSchema, sample), { msgId: id }));
      for (const c of critics) {
        const v = create(VerdictSchema, { sampleId: id, criticId: c, approve: i % 3 !== 0 || c === "a", score: 0.5, task });
        pending.push(bus.publish(Subjects.verdicts(task), toBinary(VerdictSchema, v), { msgId: `${id}.${c}` }));
      }
      if (pending.length >= 512) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);

    // Every JetStream API request and ack the workers make, by kind: where the round trips go.
    const requests = new Map<string, number>();
    const tally = (kind: string): void => void requests.set(kind, (requests.get(kind) ?? 0) + 1);
    const apiSub = bus.nc.subscribe("$JS.API.>", {
      callback: (_err, m) => tally(m.subject.split(".").slice(2, 4).join(".").replace(/^STREAM\.MSG$/, "STREAM.MSG.GET")),
    });
    const ackSub = bus.nc.subscribe("$JS.ACK.>", { callback: () => tally("ACK") });
    const kvSub = bus.nc.subscribe("$KV.>", { callback: () => tally("KV.WRITE") });
    const decSub = bus.nc.subscribe(Subjects.decisions(task), { callback: () => tally("DECISION.PUBLISH") });
    await bus.nc.flush();
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    const ws = await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        createConsensusWorker({ bus, policyProvider: () => policy, id: `bench-${i}`, tasks: [task], sweepIntervalMs: Number(process.env.SWEEP_MS ?? 1_000), ...(concurrency === undefined ? {} : { concurrency }) }),
      ),
    );
    const published = (): number => ws.reduce((acc, w) => acc + w.stats().published, 0);
    while (published() < count) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - t0) / 1000;
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const conflicts = ws.reduce((acc, w) => acc + w.stats().conflicts, 0);
    await Promise.all(ws.map((w) => w.stop()));
    for (const sub of [apiSub, ackSub, kvSub, decSub]) sub.unsubscribe();
    const perSample = Object.fromEntries([...requests].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number((v / count).toFixed(2))]));
    console.log(
      JSON.stringify({
        samples: count,
        verdicts: count * critics.length,
        workers,
        concurrency: concurrency ?? "default",
        seconds: Number(seconds.toFixed(2)),
        decisionsPerSecond: Math.round(count / seconds),
        verdictsPerSecond: Math.round((count * critics.length) / seconds),
        casConflicts: conflicts,
        requestsPerSample: perSample,
        /** Share of the run the event loop was busy: near 1 means this process's CPU is the limit. */
        eventLoopUtilization: Number(elu.toFixed(2)),
      }),
    );
  } finally {
    await bus.close();
    await server.stop();
  }
}

await main();
