import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createConsensusPolicy, openPolicyStore, type ConsensusPolicySpec, type PolicyStore } from "./index.js";
import { ensureMeshTopology } from "../topology/index.js";

let server: NatsServerProcess;
let bus: Bus;
let store: PolicyStore;

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "policy-store-test" });
  await ensureMeshTopology(bus);
  store = await openPolicyStore(bus);
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

const twoOfThree: Omit<ConsensusPolicySpec, "version"> = {
  kind: "k_of_n",
  k: 2,
  expected: ["a", "b", "c"],
  timeoutMs: 1000,
  onTimeout: "reject",
};

const codeOf = async (p: Promise<unknown>): Promise<Code | undefined> => {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof AutodidactError ? err.code : Code.Unknown;
  }
};

describe("policy store (registry bucket)", () => {
  it("versions policies and reads them back exactly", async () => {
    expect(await store.get("default")).toBeNull();
    const v1 = await store.set({ ...twoOfThree, note: "first" }, { expectedVersion: 0 });
    expect(v1.version).toBe(1);
    const v2 = await store.set({ ...twoOfThree, kind: "weighted", threshold: 0.6, basis: "mean_score", onTimeout: "accept" });
    expect(v2.version).toBe(2);
    const read = await store.get();
    expect(read).toEqual(v2);
    expect(read?.hash).not.toBe(v1.hash);
  });

  it("refuses a stale expected version with Aborted and an invalid spec with InvalidArgument", async () => {
    const current = (await store.get("default"))?.version ?? 0;
    expect(await codeOf(store.set(twoOfThree, { expectedVersion: current - 1 }))).toBe(Code.Aborted);
    expect(await codeOf(store.set({ ...twoOfThree, k: 7 }))).toBe(Code.InvalidArgument);
    expect(await codeOf(store.set({ ...twoOfThree, name: "bad name" }))).toBe(Code.InvalidArgument);
    expect((await store.get("default"))?.version).toBe(current);
    // Two writers with the same expected version: exactly one wins.
    const results = await Promise.allSettled([
      store.set({ ...twoOfThree, note: "x" }, { expectedVersion: current }),
      store.set({ ...twoOfThree, note: "y" }, { expectedVersion: current }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((await store.get("default"))?.version).toBe(current + 1);
  });

  it("provides the task's own policy, else default, else the fallback", async () => {
    const fallback = createConsensusPolicy({ ...twoOfThree, name: "fallback", version: 0 });
    await store.set({ ...twoOfThree, name: "addition", kind: "unanimous" });
    const provider = store.provider({ cacheMs: 0 });
    expect((await provider("addition")).name).toBe("addition");
    expect((await provider("reverse")).name).toBe("default");

    const fresh = await openPolicyStore(bus);
    expect((await fresh.provider({ fallback, cacheMs: 0 })("addition")).kind).toBe("unanimous");

    // A bus where nothing is set: fallback, or FailedPrecondition without one.
    const other = await startNatsServer();
    const otherBus = await connectBus({ servers: other.url, name: "empty" });
    try {
      await ensureMeshTopology(otherBus);
      const empty = await openPolicyStore(otherBus);
      expect(await empty.provider({ fallback })("addition")).toBe(fallback);
      expect(await codeOf(Promise.resolve(empty.provider()("addition")))).toBe(Code.FailedPrecondition);
    } finally {
      await otherBus.close();
      await other.stop();
    }
  });
});
