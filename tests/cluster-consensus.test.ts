// The consensus ledger on a 3-node JetStream cluster (every stream and bucket with 3 replicas): the
// node leading the ledger's bucket (KV_consensus) is SIGKILLed while samples and votes are flowing
// and two workers contest every sample; each sample is still decided exactly once. Checked on what
// was published (a DecisionAudit on a core subscription sees every publish, including a second
// decision the stream would drop), on the stream and against the ledger.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, describeTopology, kvStreamName, startNatsCluster, type Bus, type NatsCluster } from "../src/platform/bus/index.js";
import { ensureMeshTopology, KvBuckets, MESH_TOPOLOGY, Subjects } from "../src/domain/topology/index.js";
import { createConsensusWorker, DecisionAudit, type ConsensusWorker } from "../services/consensus/index.js";
import { policy, publishers, readDecisions } from "../services/consensus/test-support.js";

let cluster: NatsCluster;
let bus: Bus;
const buses: Bus[] = [];
const workers: ConsensusWorker[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster();
  bus = await connectBus({ servers: cluster.url, name: "cluster-consensus-admin", maxReconnectDelayMs: 500 });
  await ensureMeshTopology(bus, { replicas: 3 });
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
  for (const b of buses) await b.close().catch(() => undefined);
  await bus?.close();
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("consensus on a 3-node cluster", () => {
  it("decides each sample exactly once while the leader of the ledger's bucket is killed mid-vote", async () => {
    const task = "failover";
    const ledgerStream = kvStreamName(KvBuckets.Consensus);
    const leader = (await describeTopology(bus, MESH_TOPOLOGY)).find((a) => a.stream === ledgerStream)?.leader;
    expect(leader).toBeDefined();
    // The audit and the publisher stay on a node that survives (the audit counts what it saw while connected).
    const survivor = cluster.nodes.find((n) => n.name !== leader)!;
    const watcher = await connectBus({ servers: survivor.url, name: "cluster-consensus-watcher" });
    buses.push(watcher);
    const audit = await DecisionAudit.start(watcher, Subjects.decisions(task));
    const { publishSample, publishVerdict } = publishers(() => watcher);

    // Two workers on connections of their own (every node listed: they fail over), with durables of
    // their own, so that every sample is contested and the ledger's compare-and-set decides who wins.
    for (const id of ["w1", "w2"]) {
      const b = await connectBus({ servers: cluster.url, name: `cluster-consensus-${id}`, maxReconnectDelayMs: 500 });
      buses.push(b);
      workers.push(
        await createConsensusWorker({ bus: b, policyProvider: () => policy, tasks: [task], id, verdictsDurable: `failover-v-${id}`, samplesDurable: `failover-s-${id}`, sweepIntervalMs: 200 }),
      );
    }

    const n = 60;
    const ids = Array.from({ length: n }, (_, i) => `failover-${i}`);
    const send = async (i: number): Promise<void> => {
      const id = ids[i]!;
      await publishSample(task, id);
      // 2 of 3 approve every third sample, all three otherwise; votes spread over time.
      await publishVerdict(task, id, "critic-a", true);
      await publishVerdict(task, id, "critic-b", i % 3 !== 0);
      await publishVerdict(task, id, "critic-c", true);
    };
    let killedAt = 0;
    for (let i = 0; i < n; i++) {
      await send(i);
      if (i === Math.floor(n / 3)) {
        await cluster.node(leader!).kill();
        killedAt = Date.now();
      }
      await sleep(40);
    }
    expect(killedAt).toBeGreaterThan(0);
    await cluster.node(leader!).start();
    // The harness's own reads below use plain JetStream requests: let every stream settle on a leader first.
    for (let i = 0; i < 150; i++) {
      const assets = await describeTopology(watcher, MESH_TOPOLOGY);
      if (assets.every((a) => a.leader !== undefined && a.peers.every((p) => p.current && !p.offline))) break;
      await sleep(200);
    }

    const decisions = await readDecisions(watcher, task, n, 120_000);
    const perSample = new Map<string, number>();
    for (const d of decisions) perSample.set(d.sampleId, (perSample.get(d.sampleId) ?? 0) + 1);
    expect(perSample.size, "every sample decided").toBe(n);
    expect([...perSample.entries()].filter(([, c]) => c !== 1), "one decision stored per sample").toEqual([]);

    await sleep(500);
    await audit.stop();
    const published = audit.report(ids);
    expect(published.decidedTwice, published.examples.join("; ")).toBe(0);
    expect([published.samples, published.unseen, published.disconnects]).toEqual([n, 0, 0]);
    const ledger = await audit.compareWithLedger(watcher);
    expect(ledger.notInLedger, ledger.examples.join("; ")).toBe(0);
    // The gate was won exactly once per sample across both workers.
    const decided = workers.reduce((acc, w) => acc + w.stats().decided, 0);
    expect(decided).toBe(n);
    // The ledger's bucket has a leader again, on one of the nodes that stayed up or the restarted one.
    expect((await describeTopology(watcher, MESH_TOPOLOGY)).find((a) => a.stream === ledgerStream)?.leader).toBeDefined();
  }, 240_000);
});
