/**
 * Mesh throughput on loopback (on demand: `npm run bench:mesh -- [samples=20000] [consensusWorkers=1]
 * [concurrency] [--in-process]`; see README.md beside this file): N proposed samples are judged by
 * three trivial always-approve critics (the real critic plumbing of services/critic, each critic its
 * own process with its own durable and connection) and decided by consensus workers (3-of-3, their
 * own processes); reports decided samples/s from the first proposal to the last decision, next to
 * raw JetStream publish throughput (js.publish with message ids, same server, same run) and their
 * ratio, the CPU per sample of the server and of the Node processes, and whether every sample got
 * exactly one decision: one stored on the stream, one published (a DecisionAudit on a core
 * subscription sees repeats the stream drops as duplicates), and that one the ledger's. Not part
 * of CI; numbers depend on the machine and on what else runs on it.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connectBus, startNatsServer, type Bus } from "../../src/platform/bus/index.js";
import { createConsensusPolicy } from "../../src/domain/consensus/index.js";
import { createConsensusWorker, DecisionAudit, type ConsensusWorker } from "../../services/consensus/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { fromBinary } from "@bufbuild/protobuf";
import { createCritic, type Critic, type Judge } from "../../services/critic/index.js";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { ensureMeshTopology, Streams, Subjects } from "../../src/domain/topology/index.js";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
/**
 * Critics and consensus workers run in child processes of their own, as in the mesh (and so on
 * both cores); `--in-process` runs them all in this process, on one event loop.
 */
const separate = !process.argv.includes("--in-process");
const count = Number(args[0] ?? 20_000);
const workers = Number(args[1] ?? 1);
const concurrencyArg = process.argv[2] === "--child" ? process.argv[6] : args[2];
/** Consensus worker concurrency (messages in flight per consumer); the worker's default unless given. */
const concurrency = concurrencyArg === undefined || concurrencyArg === "default" ? undefined : Number(concurrencyArg);
const CRITICS = ["bench-a", "bench-b", "bench-c"];
const policy = createConsensusPolicy({ version: 1, kind: "k_of_n", k: 3, expected: CRITICS, timeoutMs: 600_000, onTimeout: "reject" });
/** Consensus workers in this run (a child gets the count from its parent). */
const workerCount = Number(process.argv[2] === "--child" ? process.argv[7] : workers);
/**
 * Options of every consensus worker. A worker alone on its durables gets every message of every
 * sample, so it may hold them until they are decidable (up to a quarter of the policy timeout)
 * instead of merging into KV after the default 2 s meant for workers that share a durable.
 */
const workerOptions = {
  ...(concurrency === undefined ? {} : { concurrency }),
  ...(workerCount === 1 ? { flushAfterMs: policy.timeoutMs / 4 } : {}),
  sweepIntervalMs: 1_000,
};
const WINDOW = 512;

const alwaysApprove: Judge = {
  kind: "rules",
  judge: async () => ({ approve: true, score: 1, reason: "bench", modelVersion: "" }),
};

async function rawPublish(bus: Bus, payload: Uint8Array): Promise<number> {
  await bus.jsm.streams.add({ name: "BENCH_RAW", subjects: ["benchraw.>"], storage: StorageType.File, retention: RetentionPolicy.Limits });
  const t0 = performance.now();
  for (let i = 0; i < count; i += WINDOW) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + WINDOW); j++) batch.push(bus.js.publish("benchraw.samples", payload, { msgID: `raw-${j}` }));
    await Promise.all(batch);
  }
  return count / ((performance.now() - t0) / 1000);
}

/** CPU seconds (user + system) a process has used so far, from /proc (0 where /proc is missing). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Child process: runs one consensus worker or one critic against `url` until SIGTERM. */
async function child(role: string, url: string, name: string): Promise<void> {
  const bus = await connectBus({ servers: url, name });
  const stop =
    role === "consensus"
      ? (await createConsensusWorker({ bus, policyProvider: () => policy, id: name, ...workerOptions })).stop
      : await (async () => {
          const c = createCritic({ bus, criticId: name, judge: alwaysApprove, maxInFlight: 256 });
          await c.start();
          return c.stop;
        })();
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  await stop();
  await bus.close();
}

function spawnChild(role: string, url: string, name: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", role, url, name, String(concurrency ?? "default"), String(workers)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, AUTODIDACT_LOG_LEVEL: "warn" },
  });
  return new Promise((resolve, reject) => {
    p.stdout!.on("data", (d: Buffer) => (d.toString().includes("ready") ? resolve(p) : undefined));
    p.once("exit", (code) => reject(new Error(`${role} ${name} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const server = await startNatsServer();
  const connect = (name: string): Promise<Bus> => connectBus({ servers: server.url, name });
  const buses: Bus[] = [];
  const children: ChildProcess[] = [];
  try {
    const main = await connect("bench-mesh");
    buses.push(main);
    await ensureMeshTopology(main);
    const samples = Array.from({ length: count }, (_, i) =>
      create(SampleSchema, { id: `s-${i}-${Math.random().toString(36).slice(2, 8)}`, task: "addition", prompt: "21+43=", completion: "64", difficulty: 2 }),
    );
    const payload = toBinary(SampleSchema, samples[0]!);
    const rawCpu0 = cpuSeconds(server.process.pid);
    const raw = await rawPublish(main, payload);
    const rawServerCpuS = cpuSeconds(server.process.pid) - rawCpu0;

    const critics: Critic[] = [];
    const deciders: ConsensusWorker[] = [];
    if (separate) {
      for (const id of CRITICS) children.push(await spawnChild("critic", server.url, id));
      for (let w = 0; w < workers; w++) children.push(await spawnChild("consensus", server.url, `bench-consensus-${w}`));
    } else {
      for (const id of CRITICS) {
        const bus = await connect(`bench-critic-${id}`);
        buses.push(bus);
        const c = createCritic({ bus, criticId: id, judge: alwaysApprove, maxInFlight: 256 });
        await c.start();
        critics.push(c);
      }
      for (let w = 0; w < workers; w++) {
        const bus = await connect(`bench-consensus-${w}`);
        buses.push(bus);
        deciders.push(await createConsensusWorker({ bus, policyProvider: () => policy, id: `bench-consensus-${w}`, ...workerOptions }));
      }
    }

    // Every decision publish, including a second decision of a sample that the stream would drop
    // as a duplicate of the first (same msg id inside its window).
    const audit = await DecisionAudit.start(main, Subjects.allDecisions);

    // The end is read from the DECISIONS stream (a core subscription may drop messages when this
    // process is starved, and would then wait forever); the decisions themselves are read back
    // after the timed part, to check there is exactly one per sample.
    let last = 0;
    const all = (async () => {
      while ((await main.jsm.streams.info(Streams.Decisions)).state.messages < count) await new Promise((r) => setTimeout(r, 20));
      last = performance.now();
    })();

    // CPU of the server and of the Node processes over the measured run: on a shared machine the
    // CPU per decided sample moves less with other tenants than wall time does.
    const nodeCpu = (): number => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 + children.reduce((a, c) => a + cpuSeconds(c.pid), 0);
    const serverCpu0 = cpuSeconds(server.process.pid);
    const nodeCpu0 = nodeCpu();
    const mainCpu = (): number => (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
    const roleCpu0 = { main: mainCpu(), critics: children.slice(0, CRITICS.length).reduce((a, c) => a + cpuSeconds(c.pid), 0), consensus: children.slice(CRITICS.length).reduce((a, c) => a + cpuSeconds(c.pid), 0) };
    const t0 = performance.now();
    for (let i = 0; i < count; i += WINDOW) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + WINDOW); j++) {
        const s = samples[j]!;
        batch.push(main.publish(Subjects.proposed("addition"), toBinary(SampleSchema, s), { msgId: s.id }));
      }
      await Promise.all(batch);
    }
    const proposedAt = performance.now();
    let judgedAt = 0;
    const judged = (async () => {
      const verdicts = async (): Promise<number> => (await main.jsm.streams.info(Streams.Verdicts)).state.messages;
      if (separate) while ((await verdicts()) < count * CRITICS.length) await new Promise((r) => setTimeout(r, 20));
      else while (critics.some((c) => c.stats().published < count)) await new Promise((r) => setTimeout(r, 10));
      judgedAt = performance.now();
    })();
    await all;
    const serverCpuS = cpuSeconds(server.process.pid) - serverCpu0;
    const nodeCpuS = nodeCpu() - nodeCpu0;
    const perSample = (seconds: number): number => Number(((seconds * 1000) / count).toFixed(3));
    const roleCpu = separate
      ? {
          main: perSample(mainCpu() - roleCpu0.main),
          critics: perSample(children.slice(0, CRITICS.length).reduce((a, c) => a + cpuSeconds(c.pid), 0) - roleCpu0.critics),
          consensus: perSample(children.slice(CRITICS.length).reduce((a, c) => a + cpuSeconds(c.pid), 0) - roleCpu0.consensus),
        }
      : undefined;
    await judged;
    const seconds = (last - t0) / 1000;
    const decidedPerSecond = count / seconds;
    const workerStats = deciders.map((d) => d.stats());
    const decided = new Map<string, number>();
    let accepted = 0;
    const reader = await main.js.consumers.get(Streams.Decisions);
    while ([...decided.values()].reduce((a, b) => a + b, 0) < count) {
      const batch = await reader.fetch({ max_messages: 1_000, expires: 2_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        const d = fromBinary(DecisionSchema, m.data);
        decided.set(d.sampleId, (decided.get(d.sampleId) ?? 0) + 1);
        if (d.accepted) accepted++;
        audit.addStored(m.data);
      }
      if (got === 0) break;
    }
    const expected = new Set(samples.map((s) => s.id));
    await audit.stop();
    const published = audit.report(expected);
    const ledger = await audit.compareWithLedger(main);
    const storedOnce = decided.size === count && [...decided].every(([id, n]) => n === 1 && expected.has(id));
    const exactlyOnce = storedOnce && published.decidedTwice === 0 && ledger.notInLedger === 0;
    for (const c of critics) await c.stop();
    for (const d of deciders) await d.stop();
    console.log(
      JSON.stringify({
        samples: count,
        critics: 3,
        processes: separate,
        consensusWorkers: workers,
        consensusConcurrency: concurrency ?? "default",
        accepted,
        exactlyOnce,
        // unseen: samples whose publish the core subscription missed (this process starved or disconnected).
        audit: {
          publishes: published.publishes,
          copies: published.copies,
          decidedTwice: published.decidedTwice,
          notInLedger: ledger.notInLedger,
          unseen: published.unseen,
          disconnects: published.disconnects,
          ...(published.examples.length + ledger.examples.length > 0 ? { examples: [...published.examples, ...ledger.examples] } : {}),
        },
        proposeSeconds: Number(((proposedAt - t0) / 1000).toFixed(2)),
        judgeSeconds: Number(((judgedAt - t0) / 1000).toFixed(2)),
        decideSeconds: Number(seconds.toFixed(2)),
        decidedPerSecond: Math.round(decidedPerSecond),
        rawPublishPerSecond: Math.round(raw),
        ratio: Number((decidedPerSecond / raw).toFixed(3)),
        rawServerCpuMsPerMessage: Number(((rawServerCpuS * 1000) / count).toFixed(3)),
        serverCpuMsPerSample: Number(((serverCpuS * 1000) / count).toFixed(3)),
        nodeCpuMsPerSample: Number(((nodeCpuS * 1000) / count).toFixed(3)),
        ...(roleCpu === undefined ? {} : { cpuMsPerSampleByRole: roleCpu }),
        ...(workerStats.length > 0 ? { consensusStats: workerStats } : {}),
        loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
      }),
    );
  } finally {
    for (const c of children) {
      c.kill("SIGTERM");
      await new Promise((r) => c.once("exit", r));
    }
    for (const b of buses.reverse()) await b.close().catch(() => undefined);
    await server.stop();
  }
}

if (process.argv[2] === "--child") await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
else await main();
