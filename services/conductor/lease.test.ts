// The lease's renewal schedule against a store whose compare-and-set takes as long as NATS does during a
// leader election. Pure logic: the store is an in-memory compare-and-set with a chosen latency (the real
// store runs against nats-server in tests/conductor-crash.test.ts and tests/cluster-chaos.test.ts).
import { afterEach, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createLogger } from "../../src/platform/telemetry/index.js";
import { Lease } from "./lease.js";
import type { LeaseRecord, RunStore } from "./run-store.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One lease key with compare-and-set; each write lands after `latency(n)` ms (n: the write's number). */
class SlowLeaseStore {
  revision = 0;
  record: LeaseRecord | null = null;
  writes = 0;
  constructor(readonly latency: (n: number) => number) {}

  async getLease(): Promise<{ lease: LeaseRecord; revision: number } | null> {
    return this.record === null ? null : { lease: this.record, revision: this.revision };
  }

  async putLease(_id: string, lease: LeaseRecord, expected: number): Promise<number> {
    const n = ++this.writes;
    const ms = this.latency(n);
    if (ms === Infinity) return new Promise<number>(() => undefined);
    await sleep(ms);
    if (expected !== this.revision) throw new AutodidactError("wrong last sequence", Code.Aborted);
    this.revision += 1;
    this.record = lease;
    return this.revision;
  }
}

const held: Lease[] = [];
afterEach(() => {
  for (const l of held.splice(0)) l.abandon();
});

async function take(store: SlowLeaseStore, ttlMs: number): Promise<Lease> {
  const lease = await Lease.acquire(store as unknown as RunStore, "run-1", "me", ttlMs, createLogger("lease-test"));
  if (lease === undefined) throw new Error("lease not taken");
  held.push(lease);
  return lease;
}

describe("lease renewal", () => {
  it("keeps the lease through a renewal slower than the renewal period (no second renewal with the same revision)", { timeout: 5_000 }, async () => {
    // TTL 1.2 s: renewals every 400 ms; the first renewal takes 550 ms (a leader election), the rest 10 ms.
    const store = new SlowLeaseStore((n) => (n === 2 ? 550 : 10));
    const lease = await take(store, 1_200);
    await sleep(2_000);
    expect(lease.signal.aborted, String(lease.signal.reason)).toBe(false);
    expect(store.record?.holder).toBe("me");
    expect(store.writes).toBeGreaterThanOrEqual(4);
  });

  it("stops driving before the lease expires when a renewal never returns", { timeout: 5_000 }, async () => {
    const store = new SlowLeaseStore((n) => (n === 2 ? Infinity : 10));
    const start = Date.now();
    const lease = await take(store, 600);
    const stored = store.record!.expiresAt;
    await new Promise<void>((resolve) => lease.signal.addEventListener("abort", () => resolve()));
    expect(Date.now()).toBeLessThan(stored);
    expect(Date.now() - start).toBeGreaterThanOrEqual(400);
    expect(String(lease.signal.reason)).toMatch(/expired/);
  });

  it("stops at once when another holder's write wins", async () => {
    const store = new SlowLeaseStore(() => 5);
    const lease = await take(store, 600);
    store.revision += 1; // another conductor wrote the key
    await new Promise<void>((resolve) => lease.signal.addEventListener("abort", () => resolve()));
    expect(String(lease.signal.reason)).toMatch(/lost/);
  });
});
