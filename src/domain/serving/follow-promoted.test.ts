// Following the promoted pointer when a checkpoint cannot be read for a while (the object store
// electing a leader after a node loss): the follower tries again while that version stays promoted,
// and stops trying once another version is promoted or following stops. Pure logic: an in-memory
// registry (the real one is exercised by the mesh tests).
import { afterEach, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { followPromoted } from "./follow-promoted.js";
import { createModelHolder, type ModelHolder } from "./model-holder.js";
import type { PromotedRegistry } from "./registry-link.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A registry whose object store is unreadable for the first `failures` reads of each version. */
class FlakyRegistry implements PromotedRegistry {
  promoted = 1;
  reads = new Map<number, number>();
  #listener: ((version: number) => void) | undefined;
  constructor(readonly failures: number) {}
  async getPromoted() {
    return { version: this.promoted, revision: this.promoted };
  }
  watchPromoted(_lineage: string, onChange: (version: number) => void) {
    this.#listener = onChange;
    return () => {
      this.#listener = undefined;
    };
  }
  promote(version: number): void {
    this.promoted = version;
    this.#listener?.(version);
  }
  async materialize(_lineage: string, version: number): Promise<string> {
    const n = (this.reads.get(version) ?? 0) + 1;
    this.reads.set(version, n);
    if (n <= this.failures) throw new AutodidactError("object store checkpoints is not available: timeout", Code.Unavailable);
    return `/ckpt/${version}`;
  }
}

const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

async function follow(registry: FlakyRegistry): Promise<ModelHolder<string>> {
  const holder = createModelHolder<string>({ name: "test model" });
  const stop = await followPromoted({
    registry,
    lineage: "main",
    holder,
    load: async (dir, version) => ({ version, model: dir, release: async () => undefined }),
    retryDelaysMs: [20, 40],
  });
  stops.push(stop);
  return holder;
}

describe("followPromoted", () => {
  it("serves the promoted checkpoint once its files can be read again", async () => {
    const registry = new FlakyRegistry(3);
    const holder = await follow(registry);
    expect(holder.version).toBeUndefined();
    for (let i = 0; i < 50 && holder.version === undefined; i++) await sleep(20);
    expect(holder.version).toBe("main@1");
    expect(registry.reads.get(1)).toBe(4);
  });

  it("stops retrying a version once another is promoted, and serves that one", async () => {
    const registry = new FlakyRegistry(1_000);
    const holder = await follow(registry);
    registry.reads.set(2, 1_000); // version 2 reads fine from the start
    registry.promote(2);
    for (let i = 0; i < 50 && holder.version === undefined; i++) await sleep(20);
    expect(holder.version).toBe("main@2");
    const before = registry.reads.get(1)!;
    await sleep(200);
    expect(registry.reads.get(1)).toBe(before);
  });

  it("stops retrying when following stops", async () => {
    const registry = new FlakyRegistry(1_000);
    await follow(registry);
    stops.splice(0).forEach((s) => s());
    const before = registry.reads.get(1)!;
    await sleep(200);
    expect(registry.reads.get(1)).toBe(before);
  });
});
