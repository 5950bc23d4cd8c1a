/**
 * Consensus throughput on loopback: N samples with three verdicts each are stored first, then W
 * consensus workers sharing one durable decide them (KV compare-and-set per vote, one decision
 * message per sample). Run on demand: `node --import tsx bench/consensus-throughput.ts [samples] [workers]`.
 * Not part of CI; numbers depend on the machine.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { connectBus, ensureTopology, startNatsServer, Subjects } from "../src/bus/index.js";
import { createConsensusPolicy, createConsensusWorker } from "../src/consensus/index.js";
import { SampleSchema, VerdictSchema } from "../src/gen/autodidact/v1/sample_pb.js";

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2_000);
  const workers = Number(process.argv[3] ?? 1);
  const server = await startNatsServer();
  const bus = await connectBus({ servers: server.url, name: "bench-consensus" });
  try {
    await ensureTopology(bus);
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

    const t0 = performance.now();
    const ws = await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        createConsensusWorker({ bus, policyProvider: () => policy, id: `bench-${i}`, tasks: [task], sweepIntervalMs: 1_000 }),
      ),
    );
    const published = (): number => ws.reduce((acc, w) => acc + w.stats().published, 0);
    while (published() < count) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - t0) / 1000;
    const conflicts = ws.reduce((acc, w) => acc + w.stats().conflicts, 0);
    await Promise.all(ws.map((w) => w.stop()));
    console.log(
      JSON.stringify({
        samples: count,
        verdicts: count * critics.length,
        workers,
        seconds: Number(seconds.toFixed(2)),
        decisionsPerSecond: Math.round(count / seconds),
        verdictsPerSecond: Math.round((count * critics.length) / seconds),
        casConflicts: conflicts,
      }),
    );
  } finally {
    await bus.close();
    await server.stop();
  }
}

await main();
