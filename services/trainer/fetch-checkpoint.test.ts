import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { CheckpointChunk } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { listCheckpointFiles, type CheckpointRecord } from "../../src/domain/registry/index.js";
import { receiveCheckpoint, streamCheckpointFiles } from "./fetch-checkpoint.js";

describe("checkpoint chunk streaming", () => {
  let dir: string;
  let record: CheckpointRecord;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fetch-ckpt-"));
    await mkdir(join(dir, "src", "adapter"), { recursive: true });
    await writeFile(join(dir, "src", "model.bin"), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 251)));
    await writeFile(join(dir, "src", "adapter", "a.json"), "{}");
    await writeFile(join(dir, "src", "training-manifest.json"), '{"v":1}');
    await writeFile(join(dir, "src", "empty"), "");
    record = { lineage: "l", version: 1, parentVersion: 0, round: 1, status: "candidate", statusReason: "", files: await listCheckpointFiles(join(dir, "src")), manifest: {}, metrics: {}, createdAt: "" };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const collect = async (chunkBytes: number): Promise<CheckpointChunk[]> => {
    const out: CheckpointChunk[] = [];
    for await (const c of streamCheckpointFiles(record, join(dir, "src"), { files: [], chunkBytes })) out.push(c);
    return out;
  };
  async function* replay(chunks: CheckpointChunk[]): AsyncGenerator<CheckpointChunk> {
    yield* chunks;
  }

  it("round-trips every file (manifest first, empty files too) with matching digests", async () => {
    const chunks = await collect(1000);
    expect(chunks[0]!.fileName).toBe("training-manifest.json");
    expect(chunks.filter((c) => c.fileName === "model.bin").length).toBe(5);
    const files = await receiveCheckpoint(replay(chunks), join(dir, "out"));
    expect(files.map((f) => [f.name, f.sha256]).sort()).toEqual(record.files.map((f) => [f.name, f.sha256]).sort());
    expect(await readFile(join(dir, "out", "model.bin"))).toEqual(await readFile(join(dir, "src", "model.bin")));
    expect((await stat(join(dir, "out", "empty"))).size).toBe(0);
  });

  it("refuses a corrupted, reordered or truncated stream with DataLoss and leaves no folder", async () => {
    const code = async (chunks: CheckpointChunk[], out: string): Promise<Code | undefined> => {
      try {
        await receiveCheckpoint(replay(chunks), join(dir, out));
        return undefined;
      } catch (e) {
        return (e as AutodidactError).code;
      }
    };
    const flipped = (await collect(1000)).map((c) => (c.fileName === "model.bin" && c.offset === 1000n ? { ...c, data: Uint8Array.from(c.data, (b, i) => (i === 3 ? b ^ 1 : b)) } : c));
    expect(await code(flipped, "bad1")).toBe(Code.DataLoss);
    const chunks = await collect(1000);
    const swapped = [...chunks];
    const i = swapped.findIndex((c) => c.fileName === "model.bin");
    [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
    expect(await code(swapped, "bad2")).toBe(Code.DataLoss);
    expect(await code(chunks.slice(0, -1), "bad3")).toBe(Code.DataLoss);
    await expect(stat(join(dir, "bad1"))).rejects.toThrow();
  });

  it("a file that changed on disk after registration is not sent with a stale digest", async () => {
    await writeFile(join(dir, "src", "adapter", "a.json"), '{"tampered":true}');
    await expect(collect(1000)).rejects.toSatisfy((e: unknown) => e instanceof AutodidactError && e.code === Code.DataLoss);
  });
});
