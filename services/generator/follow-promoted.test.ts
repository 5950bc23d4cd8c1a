// Live swap on promotion: the generator's proposer follows the promoted checkpoint of its lineage.
// The registry here is an in-memory stand-in with the registry's interface (promoted pointer + watch +
// materialize), so a checkpoint folder can be corrupted after "download" (the real registry verifies
// digests; tests/generator-registry.test.ts runs against it). Models and swaps are real.
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Bus } from "../../src/platform/bus/index.js";
import { createModelWorker, type OpenDecoder } from "../../src/engine/index.js";
import type { Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createModelHolder, followPromoted, loadDecoderModel, validateDecoderModel, type PromotedRegistry } from "../../src/domain/serving/index.js";
import { saveTinyDecoder } from "../../src/domain/serving/test-models.js";
import { createProposer } from "./proposer.js";

function memoryRegistry(dirs: Map<number, string>): PromotedRegistry & { promote(v: number): void } {
  let promoted: number | undefined;
  const listeners = new Set<(v: number) => void>();
  return {
    async materialize(_lineage, version) {
      const d = dirs.get(version);
      if (d === undefined) throw new Error(`no checkpoint ${version}`);
      return d;
    },
    async getPromoted() {
      return promoted === undefined ? undefined : { version: promoted, revision: promoted };
    },
    watchPromoted(_lineage, onChange) {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    promote(v) {
      promoted = v;
      for (const l of listeners) l(v);
    },
  };
}

describe("followPromoted with the proposer", () => {
  const worker = createModelWorker({ name: "follow-test" });
  let dir: string;
  const dirs = new Map<number, string>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "follow-"));
    for (const v of [1, 2]) {
      await saveTinyDecoder(join(dir, `v${v}`), v);
      dirs.set(v, join(dir, `v${v}`));
    }
    await cp(join(dir, "v1"), join(dir, "v3"), { recursive: true });
    await writeFile(join(dir, "v3", "model.safetensors"), "corrupt");
    dirs.set(3, join(dir, "v3"));
  });
  afterAll(async () => {
    await worker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the promoted version, swaps on promotion and rollback, and keeps serving when a promoted checkpoint is corrupt", async () => {
    const registry = memoryRegistry(dirs);
    registry.promote(1);
    const holder = createModelHolder<OpenDecoder>({ name: "gen", validate: validateDecoderModel });
    const swaps: Array<{ version: string; failed: boolean }> = [];
    let swapped: () => void = () => undefined;
    const unwatch = await followPromoted({
      registry,
      lineage: "main",
      holder,
      load: (d, version) => loadDecoderModel(worker, d, version),
      onSwap: (version, error) => {
        swaps.push({ version, failed: error !== undefined });
        swapped();
      },
    });
    const nextSwap = (): Promise<void> => new Promise((r) => (swapped = r));
    const proposer = createProposer({
      bus: {} as Bus, // generate without publishing never touches the bus
      holder,
      generatorId: "g",
      lineage: "main",
      task: "addition",
      difficulty: 2,
      temperature: 0.7,
      topP: 1,
      topK: 0,
      seed: 5,
      batchSize: 4,
    });
    const versions = async (): Promise<string[]> => {
      const out: Sample[] = [];
      for await (const s of proposer.generate({ count: 4 })) out.push(s);
      return [...new Set(out.map((s) => s.generatorModelVersion))];
    };
    expect(await versions()).toEqual(["main@1"]);

    let done = nextSwap();
    registry.promote(2);
    await done;
    expect(await versions()).toEqual(["main@2"]);

    done = nextSwap();
    registry.promote(3);
    await done;
    expect(swaps.at(-1)).toEqual({ version: "main@3", failed: true });
    expect(await versions()).toEqual(["main@2"]);

    done = nextSwap();
    registry.promote(1); // rollback
    await done;
    expect(await versions()).toEqual(["main@1"]);
    expect(swaps.map((s) => s.version)).toEqual(["main@1", "main@2", "main@3", "main@1"]);
    unwatch();
    await holder.close();
  }, 60_000);
});
