// Replication on a real 3-node JetStream cluster on loopback: a mesh started as `autodidact up` and
// the demo start it (startLocalMesh: the admin step creates the topology before any service, then
// every service verifies it), with AUTODIDACT_NATS_REPLICAS=3 in the environment, leaves every
// stream, KV bucket and object store with 3 replicas, each with a leader and two current followers;
// `autodidact doctor` reports it. An existing stream or bucket with fewer replicas is scaled up; one
// the cluster cannot hold fails naming it and both counts.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMesh } from "../apps/cli/local-mesh.js";
import { formatReplication, readReplication } from "../apps/cli/status.js";
import { MESH_TOPOLOGY } from "../src/domain/topology/index.js";
import {
  connectBus,
  describeTopology,
  ensureTopology,
  startNatsCluster,
  type Bus,
  type NatsCluster,
  type TopologyDeclaration,
} from "../src/platform/bus/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));
let cluster: NatsCluster;
let bus: Bus;

beforeAll(async () => {
  cluster = await startNatsCluster();
  bus = await connectBus({ servers: cluster.url, name: "cluster-topology-test" });
}, 60_000);

afterAll(async () => {
  await bus?.close();
  await cluster?.stop();
});

describe("replication on a 3-node cluster", () => {
  it("a mesh started with AUTODIDACT_NATS_REPLICAS=3 leaves every stream and bucket with 3 replicas", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "autodidact-cluster-mesh-"));
    const before = process.env.AUTODIDACT_NATS_REPLICAS;
    process.env.AUTODIDACT_NATS_REPLICAS = "3";
    let createdFirst: Awaited<ReturnType<typeof describeTopology>> = [];
    try {
      // As the demo does: its admin step creates the topology before any service starts (then the
      // consensus service verifies it); what that step created is what a service could only scale later.
      const mesh = await startLocalMesh({
        stateDir,
        natsUrl: cluster.url,
        auth: false,
        members: [],
        beforeServices: async (admin) => {
          createdFirst = await describeTopology(admin, MESH_TOPOLOGY);
        },
        readyTimeoutMs: 120_000,
      });
      await mesh.stop();
    } finally {
      if (before === undefined) delete process.env.AUTODIDACT_NATS_REPLICAS;
      else process.env.AUTODIDACT_NATS_REPLICAS = before;
      await rm(stateDir, { recursive: true, force: true });
    }
    expect(createdFirst.map((a) => `${a.stream}:${a.replicas}`)).toEqual(createdFirst.map((a) => `${a.stream}:3`));
    const assets = await describeTopology(bus, MESH_TOPOLOGY);
    // The buckets and the object store too (they were created with 1 replica before this was fixed).
    expect(assets.filter((a) => a.kind !== "stream")).toHaveLength(MESH_TOPOLOGY.kvBuckets.length + MESH_TOPOLOGY.objectStores.length);
    for (const a of assets) {
      expect(a.error, a.stream).toBeUndefined();
      expect(a.replicas, a.stream).toBe(3);
      expect(a.leader, a.stream).toBeDefined();
      expect(new Set(a.peers.map((p) => p.name)), a.stream).toEqual(new Set(["n1", "n2", "n3"]));
    }
    const report = await readReplication(bus, 3);
    expect(report.cluster).toBe("c1");
    // Followers catch up within moments of the creation.
    for (let i = 0; i < 50 && (await readReplication(bus, 3)).problems.length > 0; i++) await new Promise((r) => setTimeout(r, 200));
    const settled = await readReplication(bus, 3);
    expect(settled.problems, formatReplication(settled)).toEqual([]);
    expect(formatReplication(settled)).toMatch(/kv\s+\S+\s+KV_\S+\s+3\s+n\d/);

    // `autodidact doctor` as an operator runs it: exit 0 and the same report.
    const env = { ...process.env, NATS_URL: cluster.url, AUTODIDACT_NATS_REPLICAS: "3" };
    const doctor = spawnSync(process.execPath, [cli, "doctor"], { env, encoding: "utf8", timeout: 60_000 });
    expect(doctor.status, doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/cluster c1/);
    expect(doctor.stdout).toMatch(/object store\s+\S+\s+OBJ_\S+\s+3\s+n\d/);
    expect(doctor.stdout).toMatch(/replication as configured/);
    // Asked for more replicas than the streams have, it says so and exits 1.
    const five = spawnSync(process.execPath, [cli, "doctor", "--nats-replicas", "5"], { env, encoding: "utf8", timeout: 60_000 });
    expect(five.status).toBe(1);
    expect(five.stdout).toMatch(/kv \S+ has 3 replicas, configured 5/);
  }, 180_000);

  it("scales an existing stream, bucket and object store up, and names both counts when the cluster cannot hold them", async () => {
    const declaration: TopologyDeclaration = {
      streams: [{ name: "SCALE", subjects: ["scale.>"], purpose: "t" }],
      kvBuckets: [{ name: "scale-kv", history: 1, purpose: "t" }],
      objectStores: [{ name: "scale-objects", purpose: "t" }],
    };
    const first = await ensureTopology(bus, declaration, { replicas: 1 });
    expect(first.created).toHaveLength(3);
    const scaled = await ensureTopology(bus, declaration, { replicas: 3 });
    expect(scaled.updated).toEqual(["stream SCALE (num_replicas)", "kv scale-kv (num_replicas)", "object store scale-objects (num_replicas)"]);
    for (const a of await describeTopology(bus, declaration)) expect(a.replicas, a.stream).toBe(3);
    // A process configured with 1 replica later does not scale them down.
    expect((await ensureTopology(bus, declaration, { replicas: 1 })).updated).toEqual([]);
    for (const a of await describeTopology(bus, declaration)) expect(a.replicas, a.stream).toBe(3);

    const err = await ensureTopology(bus, declaration, { replicas: 5, retryForMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
    expect((err as AutodidactError).message).toMatch(/stream SCALE .*it has 3 replicas, the topology wants 5/);
  }, 120_000);
});
