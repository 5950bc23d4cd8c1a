import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CheckpointRefSchema, CheckpointStatus as WireStatus, type CheckpointRef } from "../../gen/autodidact/v1/checkpoint_pb.js";
import { ObjectBuckets } from "../topology/index.js";
import { objectPrefix } from "./bucket.js";
import type { CheckpointRecord } from "./registry.js";

/** JSON with object keys sorted at every level and no whitespace: one text per value, whoever writes it. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined || typeof v === "function" ? "null" : canonicalJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== "function")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/**
 * The digest of a checkpoint: SHA-256 (hex) of the canonical JSON ({@link canonicalJson}) of
 * `{ files, manifest }` from its registry record, `files` sorted by name. `files` lists every
 * file of the checkpoint with its own SHA-256 and size (what fetches verify), `manifest` what
 * formed it; so two equal digests mean the same bytes made the same way. It depends on the record
 * only, so trainer, monitor and anyone else holding the record compute the same value.
 */
export function checkpointDigest(record: Pick<CheckpointRecord, "files" | "manifest">): string {
  const files = [...record.files]
    .map((f) => ({ name: f.name, sha256: f.sha256, size: f.size }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return createHash("sha256").update(canonicalJson({ files, manifest: record.manifest })).digest("hex");
}

/**
 * Where a checkpoint's files live: `nats-obj://checkpoints/<lineage>/<version>/`, the object name
 * prefix of its files in the checkpoints object store (append a file's name from the record).
 */
export function checkpointUri(lineage: string, version: number): string {
  return `nats-obj://${ObjectBuckets.Checkpoints}/${objectPrefix(lineage, version)}`;
}

const STATUS: Record<CheckpointRecord["status"], WireStatus> = {
  candidate: WireStatus.CANDIDATE,
  promoted: WireStatus.PROMOTED,
  rejected: WireStatus.REJECTED,
  rolled_back: WireStatus.ROLLED_BACK,
};

/** The task a record was trained for (its manifest's `task`), "" when it names none. */
export function taskOf(record: CheckpointRecord): string {
  const task = record.manifest["task"];
  return typeof task === "string" ? task : "";
}

/**
 * A registry record as the wire `CheckpointRef`: the one conversion, so every publisher and RPC
 * gives the same digest, uri, status and task for the same checkpoint. `metrics` adds headline
 * metrics (e.g. the monitor's evaluation) over the record's own.
 */
export function checkpointRefOf(record: CheckpointRecord, options: { metrics?: Readonly<Record<string, number>> } = {}): CheckpointRef {
  const createdAt = new Date(record.createdAt);
  return create(CheckpointRefSchema, {
    version: BigInt(record.version),
    lineage: record.lineage,
    parentVersion: BigInt(record.parentVersion),
    round: record.round,
    digest: checkpointDigest(record),
    uri: checkpointUri(record.lineage, record.version),
    metrics: { ...record.metrics, ...options.metrics },
    status: STATUS[record.status],
    statusReason: record.statusReason,
    task: taskOf(record),
    ...(Number.isNaN(createdAt.getTime()) ? {} : { createdAt: timestampFromDate(createdAt) }),
  });
}
