import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";

/** Name of the digest manifest written last into every checkpoint folder. */
export const MANIFEST_FILE = "manifest.json";

/** The manifest: which files make up the checkpoint and their sha256, so corruption is detected. */
export interface Manifest {
  readonly format: "autodidact.checkpoint/1";
  readonly kind: "model" | "lora";
  readonly createdAt: string;
  readonly files: Readonly<Record<string, { readonly sha256: string; readonly bytes: number }>>;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Hex sha256 of bytes. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes a file atomically (temp file + rename), creating parent folders. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/**
 * Writes the given files into `dir`, then `manifest.json` with their digests (last, so a folder
 * with a manifest is complete). Returns the manifest.
 */
export async function writeCheckpointFiles(
  dir: string,
  kind: Manifest["kind"],
  files: Readonly<Record<string, Uint8Array | string>>,
  metadata?: Record<string, string>,
): Promise<Manifest> {
  // Drop a previous manifest first: until the new one lands, the folder reads as incomplete.
  await rm(join(dir, MANIFEST_FILE), { force: true });
  const entries: Record<string, { sha256: string; bytes: number }> = {};
  for (const [name, content] of Object.entries(files)) {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    await writeFileAtomic(join(dir, name), bytes);
    entries[name] = { sha256: sha256(bytes), bytes: bytes.length };
  }
  const manifest: Manifest = { format: "autodidact.checkpoint/1", kind, createdAt: new Date().toISOString(), files: entries, ...(metadata ? { metadata } : {}) };
  await writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  return manifest;
}

/** Reads `manifest.json` of a folder; NotFound if missing, DataLoss if unreadable. */
export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new AutodidactError(`${path} is missing: not a complete checkpoint`, Code.NotFound, { cause, details: { file: path } });
  }
  try {
    const m = JSON.parse(text) as Manifest;
    if (m.format !== "autodidact.checkpoint/1" || typeof m.files !== "object") throw new Error("unknown manifest format");
    return m;
  } catch (cause) {
    throw new AutodidactError(`${path} is corrupt: ${(cause as Error).message}`, Code.DataLoss, { cause, details: { file: path } });
  }
}

/**
 * Reads one file of a checkpoint and checks it against the manifest: DataLoss naming the file on
 * a size or digest mismatch, NotFound if it is absent.
 */
export async function readVerified(dir: string, name: string, manifest: Manifest): Promise<Uint8Array> {
  const path = join(dir, name);
  const entry = manifest.files[name];
  if (!entry) throw new AutodidactError(`${path} is not listed in ${MANIFEST_FILE}`, Code.DataLoss, { details: { file: path } });
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (cause) {
    throw new AutodidactError(`cannot read ${path}`, Code.NotFound, { cause, details: { file: path } });
  }
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (bytes.length !== entry.bytes) {
    throw new AutodidactError(`${path}: size ${bytes.length} differs from the manifest's ${entry.bytes} (truncated or replaced)`, Code.DataLoss, {
      details: { file: path },
    });
  }
  const digest = sha256(bytes);
  if (digest !== entry.sha256) {
    throw new AutodidactError(`${path}: sha256 digest mismatch (file ${digest.slice(0, 12)}…, manifest ${entry.sha256.slice(0, 12)}…)`, Code.DataLoss, {
      details: { file: path },
    });
  }
  return bytes;
}
