/**
 * The chaos run on a 3-node JetStream cluster (`npm run bench:chaos -- --cluster`, and smaller,
 * tests/cluster-chaos.test.ts): the same mesh, load, service kills and invariants as chaos.ts, on a
 * cluster of three nats-server processes on loopback with every stream and bucket replicated 3
 * times; on top of the service kills, nodes are SIGKILLed and restarted, each time the node that
 * currently leads a chosen stream or bucket (read from the server), taking every stream and bucket
 * in turn. After each node loss it measures how long until a KV write and a publish to streams led
 * by the lost node succeed again (probe stream and bucket moved onto that node before the kill),
 * how long until the chosen asset has a new leader, and how long the restarted node takes to catch up.
 */
import {
  connectBus,
  declaredStreamNames,
  describeTopology,
  ensureTopology,
  openKv,
  startNatsCluster,
  type AssetStatus,
  type Bus,
  type NatsCluster,
  type TopologyDeclaration,
} from "../../src/platform/bus/index.js";
import { createRng } from "../../src/engine/index.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { runChaos, type ChaosOptions, type ChaosReport, type InvariantResult } from "./chaos.js";

/** Knobs of a cluster chaos run: those of chaos.ts (without nats-server restarts) plus the node kills. */
export interface ClusterChaosOptions extends Omit<ChaosOptions, "natsRestarts" | "nats" | "duringChaos"> {
  /** Node SIGKILLs during the chaos phase, spread evenly; each takes the leader of the next stream or bucket in turn. */
  nodeKills: number;
  /** How long a killed node stays down once writes recovered, in ms (default 3 s). */
  nodeDownMs?: number;
}

/** One node loss and what it cost. */
export interface NodeKill {
  /** Seconds into the chaos phase. */
  atS: number;
  /** The stream whose leader was taken (`SAMPLES`, the stream behind a bucket, …). */
  target: string;
  node: string;
  /** Until a KV write and a publish to assets the lost node led succeeded again, ms. */
  recoveryMs: number;
  /** Whether the probe stream and bucket were led by the lost node when it died (so the recovery measures a failover). */
  probesOnVictim: boolean;
  /** Until the target had a leader again, ms. */
  electionMs: number;
  /** From the restart until every replica on it was current, ms. */
  catchUpMs: number;
}

/** A chaos report with the cluster's node kills. */
export interface ClusterChaosReport extends ChaosReport {
  nodeKills: NodeKill[];
  /** Streams behind every stream and bucket of the mesh whose leader was killed at least once. */
  leadersKilled: string[];
  recoveryMedianMs: number;
  recoveryWorstMs: number;
  /** Every stream and bucket after the run: replicas and leader. */
  finalAssets: Array<Pick<AssetStatus, "stream" | "replicas" | "leader">>;
}

/** The probe stream and bucket: writes the recovery time is measured with, kept apart from the mesh's state. */
const PROBES: TopologyDeclaration = {
  streams: [{ name: "CHAOS_PROBE", subjects: ["chaosprobe.>"], purpose: "publishes timing a node loss (cluster chaos bench)" }],
  kvBuckets: [{ name: "chaos-probe", history: 1, purpose: "KV writes timing a node loss (cluster chaos bench)" }],
  objectStores: [],
};
const PROBE_STREAMS = ["CHAOS_PROBE", "KV_chaos-probe"];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const only = (stream: string): TopologyDeclaration => ({ streams: [{ name: stream, subjects: [], purpose: "" }], kvBuckets: [], objectStores: [] });

/** The leader of one stream right now (undefined while none is elected). */
async function leaderOf(bus: Bus, stream: string): Promise<string | undefined> {
  return (await describeTopology(bus, only(stream), { retryForMs: 2_000 }))[0]?.leader;
}

/** Waits until every stream of the mesh and the probes has a leader and every replica is current; returns how long it took. */
async function waitForHealthy(bus: Bus, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const all: TopologyDeclaration = {
    streams: [...MESH_TOPOLOGY.streams, ...PROBES.streams],
    kvBuckets: [...MESH_TOPOLOGY.kvBuckets, ...PROBES.kvBuckets],
    objectStores: MESH_TOPOLOGY.objectStores,
  };
  while (Date.now() - started < timeoutMs) {
    const assets = await describeTopology(bus, all, { retryForMs: 2_000 });
    if (assets.every((a) => a.leader !== undefined && a.peers.length === 3 && a.peers.every((p) => p.current && !p.offline))) return Date.now() - started;
    await sleep(250);
  }
  return Date.now() - started;
}

/** Moves a stream's leadership until `node` leads it (a stepdown elects one of the other peers); false when it did not get there. */
async function moveLeader(bus: Bus, stream: string, node: string): Promise<boolean> {
  for (let i = 0; i < 12; i++) {
    const leader = await leaderOf(bus, stream);
    if (leader === node) return true;
    await bus.nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, new Uint8Array(0), { timeout: 5_000 }).catch(() => undefined);
    for (let w = 0; w < 40 && (await leaderOf(bus, stream)) === leader; w++) await sleep(100);
  }
  return (await leaderOf(bus, stream)) === node;
}

/** The node kills of one run: the chaos phase's extra faults. */
class NodeKiller {
  readonly kills: NodeKill[] = [];
  readonly errors: string[] = [];

  constructor(
    private readonly cluster: NatsCluster,
    private readonly probe: Bus,
    private readonly options: ClusterChaosOptions,
  ) {}

  async run(chaosMs: number, log: (line: string) => void): Promise<void> {
    const rng = createRng(`cluster-chaos:${this.options.seed}`);
    // Every stream and bucket in turn, starting at a seeded place in the list.
    const targets = declaredStreamNames(MESH_TOPOLOGY);
    const offset = rng.int(targets.length);
    const slot = chaosMs / this.options.nodeKills;
    const started = Date.now();
    const kv = await openKv(this.probe, "chaos-probe", { retryForMs: 60_000 });
    for (let i = 0; i < this.options.nodeKills; i++) {
      await sleep(Math.max(0, started + i * slot + slot * 0.1 - Date.now()));
      const target = targets[(offset + i) % targets.length]!;
      try {
        // One node down at a time: the previous one must have caught up (two down = no quorum).
        await waitForHealthy(this.probe, 60_000);
        const node = await leaderOf(this.probe, target);
        if (node === undefined) {
          this.errors.push(`${target} had no leader to kill`);
          continue;
        }
        const probesOnVictim = (await Promise.all(PROBE_STREAMS.map((s) => moveLeader(this.probe, s, node)))).every(Boolean);
        const killedAt = Date.now();
        await this.cluster.node(node).kill();
        const atS = (killedAt - started) / 1000;
        // Meanwhile: when the target has a leader again.
        const election = (async (): Promise<number> => {
          for (;;) {
            const leader = await leaderOf(this.probe, target).catch(() => undefined);
            const ms = Date.now() - killedAt;
            if ((leader !== undefined && leader !== node) || ms > 60_000) return ms;
            await sleep(100);
          }
        })();
        // A KV write and a publish, both retried by the clients through the election.
        const id = `kill-${i}`;
        await Promise.all([kv.putJson(`probe.${id}`, { at: killedAt }), this.probe.publish(`chaosprobe.${id}`, new TextEncoder().encode(id), { msgId: id, retryForMs: 60_000 })]);
        const recoveryMs = Date.now() - killedAt;
        const electionMs = await election;
        await sleep(this.options.nodeDownMs ?? 3_000);
        const restartAt = Date.now();
        await this.cluster.node(node).start();
        await waitForHealthy(this.probe, 90_000);
        const catchUpMs = Date.now() - restartAt;
        this.kills.push({ atS, target, node, recoveryMs, probesOnVictim, electionMs, catchUpMs });
        log(`  ${atS.toFixed(1)}s SIGKILL node ${node} (leader of ${target}): writes back after ${(recoveryMs / 1000).toFixed(1)} s, ${target} re-elected after ${(electionMs / 1000).toFixed(1)} s, caught up ${(catchUpMs / 1000).toFixed(1)} s after restart${probesOnVictim ? "" : " (probes not on the victim)"}`);
      } catch (err) {
        this.errors.push(`node kill ${i} (${target}): ${err instanceof Error ? err.message : String(err)}`);
        // Whatever happened, no node stays down.
        await Promise.all(this.cluster.nodes.map((n) => n.start().catch(() => undefined)));
      }
    }
  }
}

/**
 * Runs the chaos run on a fresh 3-node cluster with replicas 3 and node kills on top of the service
 * kills; checks chaos.ts's invariants plus the cluster's own (every stream's and bucket's leader
 * killed, every node kill recovered, replication as configured at the end). Never throws for an invariant.
 */
export async function runClusterChaos(options: ClusterChaosOptions): Promise<ClusterChaosReport> {
  const log = options.log ?? (() => undefined);
  const cluster = await startNatsCluster();
  let probe: Bus | undefined;
  try {
    probe = await connectBus({ servers: cluster.url, name: "chaos-probe", waitOnFirstConnect: true, maxReconnectDelayMs: 250 });
    await ensureTopology(probe, PROBES, { replicas: 3 });
    log(`cluster ${cluster.name}: ${cluster.nodes.map((n) => `${n.name} ${n.url}`).join(", ")}`);
    const killer = new NodeKiller(cluster, probe, options);
    const base = await runChaos({
      ...options,
      natsRestarts: 0,
      // Elections after a node loss hold writes for 5-10 s here. A conductor whose renewal stalls past half
      // its lease stops and, being the holder, takes the run again as soon as writes are back; a longer lease
      // would only delay the takeover after a conductor kill.
      leaseTtl: options.leaseTtl ?? "10s",
      nats: { url: cluster.url, replicas: 3 },
      duringChaos: ({ chaosMs, log: line }) => killer.run(chaosMs, line),
    });
    await waitForHealthy(probe, 60_000);
    const finalAssets = (await describeTopology(probe, MESH_TOPOLOGY)).map((a) => ({ stream: a.stream, replicas: a.replicas, leader: a.leader }));
    const recoveries = killer.kills.map((k) => k.recoveryMs);
    const report: ClusterChaosReport = {
      ...base,
      nodeKills: killer.kills,
      leadersKilled: [...new Set(killer.kills.map((k) => k.target))].sort(),
      recoveryMedianMs: median(recoveries),
      recoveryWorstMs: Math.max(0, ...recoveries),
      finalAssets,
    };
    const everyAsset = finalAssets.map((a) => a.stream);
    const inv = (name: string, ok: boolean, detail: string): void => void report.invariants.push({ name, ok, detail } satisfies InvariantResult);
    inv("node kills as scheduled, each recovered", killer.kills.length >= options.nodeKills && killer.errors.length === 0, `${killer.kills.length}/${options.nodeKills} node kills${killer.errors.length > 0 ? `; ${killer.errors.join("; ")}` : ""}`);
    if (options.nodeKills >= everyAsset.length) {
      const missed = everyAsset.filter((s) => !report.leadersKilled.includes(s));
      inv("every stream's and bucket's leader killed at least once", missed.length === 0, missed.length === 0 ? `all ${everyAsset.length}` : `never: ${missed.join(", ")}`);
    }
    const notReplicated = finalAssets.filter((a) => a.replicas !== 3 || a.leader === undefined);
    inv("every stream and bucket with 3 replicas and a leader at the end", notReplicated.length === 0, notReplicated.map((a) => `${a.stream}: ${a.replicas} replicas, leader ${a.leader ?? "none"}`).join("; ") || `${finalAssets.length} of ${finalAssets.length}`);
    return report;
  } finally {
    await probe?.close().catch(() => undefined);
    await cluster.stop();
  }
}
