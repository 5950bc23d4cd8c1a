// The bus clients on a real 3-node JetStream cluster: KV reads and writes, compare-and-set, object
// store puts and gets and publishes keep working while the node leading their stream is SIGKILLed
// (they retry through the election), and nothing is stored twice or reported wrongly: a write whose
// reply was lost (the connection cut right after the server got it) reports the write's own success,
// never a conflict, and is stored once.
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectBus,
  describeTopology,
  ensureTopology,
  freePort,
  isKvConflict,
  openKv,
  openObjectStore,
  sha256Hex,
  startNatsCluster,
  type Bus,
  type NatsCluster,
  type TopologyDeclaration,
} from "../src/platform/bus/index.js";

const DECLARATION: TopologyDeclaration = {
  streams: [{ name: "FAILOVER", subjects: ["failover.>"], purpose: "publishes under a leader kill" }],
  kvBuckets: [
    { name: "failover-kv", history: 1, purpose: "writes under a leader kill" },
    { name: "lost-replies", history: 5, purpose: "writes whose reply is lost" },
  ],
  objectStores: [{ name: "failover-objects", purpose: "objects under a leader kill" }],
};

let cluster: NatsCluster;
let bus: Bus;

beforeAll(async () => {
  cluster = await startNatsCluster();
  bus = await connectBus({ servers: cluster.url, name: "failover-test", maxReconnectDelayMs: 500 });
  await ensureTopology(bus, DECLARATION, { replicas: 3 });
}, 60_000);

afterAll(async () => {
  await bus?.close();
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP proxy to one node that, once armed, cuts the client's connection right after forwarding a frame containing `marker`. */
class CuttingProxy {
  private server: Server | undefined;
  private marker: string | undefined;
  private readonly sockets = new Set<Socket>();
  cuts = 0;
  port = 0;

  async start(upstreamPort: number): Promise<void> {
    this.port = await freePort();
    this.server = createServer((client) => {
      const upstream = netConnect(upstreamPort, "127.0.0.1");
      this.sockets.add(client).add(upstream);
      client.on("data", (chunk) => {
        upstream.write(chunk);
        if (this.marker !== undefined && chunk.toString("latin1").includes(this.marker)) {
          this.marker = undefined;
          this.cuts++;
          // The server gets the frame (end() flushes it); its reply never reaches the client.
          upstream.end();
          client.destroy();
        }
      });
      upstream.on("data", (d) => {
        if (!client.destroyed) client.write(d);
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, "127.0.0.1", r));
  }

  /** The next client frame containing `marker` is delivered and its connection cut. */
  arm(marker: string): void {
    this.marker = marker;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}

describe("bus clients on a 3-node cluster", () => {
  it("keep writing, reading and publishing while the leader of their stream is killed, and store nothing twice", async () => {
    const kv = await openKv(bus, "failover-kv");
    const objects = await openObjectStore(bus, "failover-objects");
    const leaderOf = async (stream: string): Promise<string> => (await describeTopology(bus, { streams: [{ name: stream, subjects: [], purpose: "" }], kvBuckets: [], objectStores: [] }))[0]!.leader!;
    const victim = await leaderOf("KV_failover-kv");
    await kv.putJson("counter", 0);

    let stop = false;
    const errors: string[] = [];
    let increments = 0;
    const puts = new Set<string>();
    const published = new Set<string>();
    const blobs = new Map<string, string>();
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        try {
          const r = await kv.modify<number>("counter", (n) => (n ?? 0) + 1, { maxAttempts: 200 });
          if (r.changed) increments++;
          await kv.putJson(`put.${w}.${i}`, { w, i });
          puts.add(`put.${w}.${i}`);
          const id = `msg-${w}-${i}`;
          await bus.publish(`failover.${w}`, new TextEncoder().encode(id), { msgId: id, retryForMs: 30_000 });
          published.add(id);
          if (i % 5 === 0) {
            const data = new TextEncoder().encode(`blob ${w} ${i} `.repeat(2_000));
            await objects.put(`blob-${w}-${i}`, data);
            blobs.set(`blob-${w}-${i}`, sha256Hex(data));
          }
        } catch (err) {
          errors.push(`worker ${w} step ${i}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    const workers = [0, 1, 2].map((w) => worker(w));
    await sleep(1_500);
    await cluster.node(victim).kill();
    const killedAt = Date.now();
    const before = increments;
    // Work goes on with the other two nodes (a new leader is elected).
    while (increments <= before + 5 && Date.now() - killedAt < 30_000) await sleep(100);
    const recoveredMs = Date.now() - killedAt;
    await sleep(1_000);
    await cluster.node(victim).start();
    await sleep(1_500);
    stop = true;
    await Promise.all(workers);

    expect(errors).toEqual([]);
    expect(increments, `no increment after the kill within ${recoveredMs} ms`).toBeGreaterThan(before + 5);
    expect(await leaderOf("KV_failover-kv")).toBeDefined();
    // Exactly once: every increment the clients saw succeed is in the counter, no more.
    expect((await kv.getJson<number>("counter"))?.value).toBe(increments);
    for (const key of puts) expect(await kv.get(key), key).not.toBeNull();
    const info = await bus.jsm.streams.info("FAILOVER");
    expect(info.state.messages).toBe(published.size);
    for (const [name, sha] of blobs) expect((await objects.get(name, { expectSha256: sha })).info.sha256).toBe(sha);
  }, 120_000);

  it("reports a write whose reply was lost as done, never as a conflict, and stores it once", async () => {
    const proxy = new CuttingProxy();
    await proxy.start(cluster.nodes[0]!.port);
    const kv = await openKv(bus, "lost-replies");
    const count = async (): Promise<number> => (await bus.jsm.streams.info("KV_lost-replies")).state.messages;
    /** Runs `write` on a fresh connection through the proxy, which cuts it right after the server got the write's frame. */
    const cutAfter = async <T>(key: string, write: (cut: Awaited<ReturnType<typeof openKv>>) => Promise<T>): Promise<T | unknown> => {
      // A connection of its own each time: after a cut, the client may reconnect to another node directly.
      const conn = await connectBus({ servers: `nats://127.0.0.1:${proxy.port}`, name: "lost-replies", maxReconnectDelayMs: 200 });
      try {
        const cutKv = await openKv(conn, "lost-replies");
        const cuts = proxy.cuts;
        proxy.arm(`lost-replies.${key}`);
        const result = await write(cutKv).catch((err: unknown) => err);
        expect(proxy.cuts, `the connection was cut after the write of ${key}`).toBe(cuts + 1);
        return result;
      } finally {
        await conn.close();
      }
    };
    try {
      // create: the server stores it, the reply is lost; the retry is acknowledged as the duplicate it is.
      const created = await cutAfter("created", (k) => k.createJson("created", { v: 1 }));
      expect(created, String(created)).toBe((await kv.get("created"))?.revision);

      // compare-and-set: a clustered stream checks the expected revision before de-duplicating, so the
      // retry may be refused as a conflict; the client asks whether its write landed, and it did.
      const base = await kv.putJson("cas", { v: 0 });
      const stored = await count();
      const updated = await cutAfter("cas", (k) => k.updateJson("cas", { v: 1 }, base));
      expect(isKvConflict(updated), String(updated)).toBe(false);
      expect(updated).toBe((await kv.get("cas"))?.revision);
      expect((await kv.getJson<{ v: number }>("cas"))?.value.v).toBe(1);
      expect(await count()).toBe(stored + 1);
      // A real conflict is still one.
      const stale = await kv.updateJson("cas", { v: 2 }, base).catch((err: unknown) => err);
      expect(isKvConflict(stale)).toBe(true);

      // put: stored once, not once per attempt.
      const beforePut = await count();
      await cutAfter("put", (k) => k.putJson("put", { v: 1 }));
      expect(await count()).toBe(beforePut + 1);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it("lets exactly one of many concurrent compare-and-sets with the same revision through", async () => {
    const kv = await openKv(bus, "failover-kv");
    for (let round = 0; round < 20; round++) {
      const rev = await kv.putJson(`race.${round}`, { winner: null });
      const writers = await Promise.all(
        Array.from({ length: 3 }, async (_, w) => {
          const conn = await connectBus({ servers: cluster.nodes[w]!.url, name: `race-${w}` });
          try {
            const k = await openKv(conn, "failover-kv");
            return await k.updateJson(`race.${round}`, { winner: w }, rev).then(() => w, (err: unknown) => (isKvConflict(err) ? -1 : String(err)));
          } finally {
            await conn.close();
          }
        }),
      );
      const winners = writers.filter((w) => typeof w === "number" && w >= 0);
      expect(writers.filter((w) => typeof w === "string")).toEqual([]);
      expect(winners, `round ${round}: ${JSON.stringify(writers)}`).toHaveLength(1);
      expect((await kv.getJson<{ winner: number }>(`race.${round}`))?.value.winner).toBe(winners[0]);
    }
  }, 120_000);
});
