import { createHash, randomBytes } from "node:crypto";
import { open, mkdir, rename, rm, writeFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { create } from "@bufbuild/protobuf";
import { CheckpointChunkSchema, type CheckpointChunk, type FetchCheckpointRequest } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { safeCheckpointPath, type CheckpointRecord } from "../../src/domain/registry/index.js";

/** Default and maximum chunk sizes: well below gRPC's 4 MiB default message limit. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;
export const MAX_CHUNK_BYTES = 1024 * 1024;

/** Files of a record in transfer order: the manifests first (so a receiver can check the rest), then by name. */
export function transferOrder(record: CheckpointRecord, only: readonly string[]): { name: string; size: number }[] {
  const known = new Map(record.files.map((f) => [f.name, f]));
  for (const name of only) {
    if (!known.has(name)) throw new AutodidactError(`checkpoint ${record.lineage}@${record.version} has no file ${name}`, Code.NotFound);
  }
  const names = only.length > 0 ? [...new Set(only)] : [...known.keys()];
  const rank = (n: string): number => (n === "training-manifest.json" ? 0 : n === "manifest.json" ? 1 : 2);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map((n) => ({ name: n, size: known.get(n)!.size }));
}

/**
 * Streams checkpoint files from a local folder in chunks, each file's digest on its last chunk.
 * The digest is computed over the bytes actually sent, and compared with the record: a file that
 * changed on disk fails with DataLoss instead of arriving with a stale digest.
 */
export async function* streamCheckpointFiles(
  record: CheckpointRecord,
  dir: string,
  request: Pick<FetchCheckpointRequest, "files" | "chunkBytes">,
  signal?: AbortSignal,
): AsyncGenerator<CheckpointChunk> {
  const chunkBytes = Math.min(MAX_CHUNK_BYTES, request.chunkBytes > 0 ? request.chunkBytes : DEFAULT_CHUNK_BYTES);
  const files = transferOrder(record, request.files);
  const expected = new Map(record.files.map((f) => [f.name, f.sha256]));
  for (const [index, file] of files.entries()) {
    const path = safeCheckpointPath(dir, file.name);
    const fh = await open(path, "r");
    try {
      const size = (await fh.stat()).size;
      const hash = createHash("sha256");
      let offset = 0;
      do {
        if (signal?.aborted) throw new AutodidactError("fetch cancelled", Code.Canceled);
        const buf = Buffer.alloc(Math.min(chunkBytes, size - offset));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        const data = buf.subarray(0, bytesRead);
        hash.update(data);
        const last = offset + bytesRead >= size;
        let digest = "";
        if (last) {
          digest = hash.digest("hex");
          if (digest !== expected.get(file.name)) {
            throw new AutodidactError(`checkpoint file ${file.name} does not match its record`, Code.DataLoss);
          }
        }
        yield create(CheckpointChunkSchema, { fileName: file.name, offset: BigInt(offset), data, totalSize: BigInt(size), sha256: digest, last, fileIndex: index, fileCount: files.length });
        offset += bytesRead;
        if (bytesRead === 0) break;
      } while (offset < size);
    } finally {
      await fh.close();
    }
  }
}

/**
 * Client side of FetchCheckpoint: writes the streamed chunks into `dir` (atomically: a temp folder
 * renamed at the end), checking order, offsets, sizes and each file's sha256 (DataLoss on any
 * mismatch). Returns the files received with their digests.
 */
export async function receiveCheckpoint(
  chunks: AsyncIterable<CheckpointChunk>,
  dir: string,
): Promise<{ name: string; sha256: string; size: number }[]> {
  const tmp = `${dir}.tmp-${randomBytes(4).toString("hex")}`;
  const out: { name: string; sha256: string; size: number }[] = [];
  let current: { name: string; hash: ReturnType<typeof createHash>; offset: number; parts: Buffer[] } | undefined;
  let fileCount = -1;
  try {
    await mkdir(tmp, { recursive: true });
    for await (const c of chunks) {
      if (current === undefined) {
        if (c.offset !== 0n) throw new AutodidactError(`chunk of ${c.fileName} starts at ${c.offset}, expected 0`, Code.DataLoss);
        current = { name: c.fileName, hash: createHash("sha256"), offset: 0, parts: [] };
        fileCount = c.fileCount;
      }
      if (c.fileName !== current.name || Number(c.offset) !== current.offset) {
        throw new AutodidactError(`unexpected chunk ${c.fileName}@${c.offset} (expected ${current.name}@${current.offset})`, Code.DataLoss);
      }
      current.hash.update(c.data);
      current.parts.push(Buffer.from(c.data));
      current.offset += c.data.byteLength;
      if (c.last) {
        const digest = current.hash.digest("hex");
        if (digest !== c.sha256 || BigInt(current.offset) !== c.totalSize) {
          throw new AutodidactError(`file ${current.name} arrived corrupt (sha256 ${digest}, ${current.offset} bytes)`, Code.DataLoss);
        }
        const path = safeCheckpointPath(tmp, current.name);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, Buffer.concat(current.parts));
        out.push({ name: current.name, sha256: digest, size: current.offset });
        current = undefined;
      }
    }
    if (current !== undefined) throw new AutodidactError(`stream ended inside ${current.name}`, Code.DataLoss);
    if (fileCount >= 0 && out.length !== fileCount) throw new AutodidactError(`received ${out.length} of ${fileCount} files`, Code.DataLoss);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dirname(dir), { recursive: true });
    await rename(tmp, dir);
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Where the trainer keeps a checkpoint it wrote, if that folder is still there. */
export async function localCheckpointDir(dataDir: string, lineage: string, version: number): Promise<string | undefined> {
  const dir = join(dataDir, "checkpoints", lineage, String(version));
  try {
    return (await stat(dir)).isDirectory() ? dir : undefined;
  } catch {
    return undefined;
  }
}
