// The one CheckpointRef conversion: its digest and uri depend on the record only (pure logic).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CheckpointStatus } from "../../gen/autodidact/v1/checkpoint_pb.js";
import { canonicalJson, checkpointDigest, checkpointRefOf, checkpointUri, type CheckpointRecord } from "./index.js";

const record: CheckpointRecord = {
  lineage: "main",
  version: 3,
  parentVersion: 2,
  round: 2,
  status: "candidate",
  statusReason: "trained",
  files: [
    { name: "onnx/model.onnx", sha256: "b".repeat(64), size: 20 },
    { name: "config.json", sha256: "a".repeat(64), size: 10 },
  ],
  manifest: { task: "addition", mix: { realCount: 4, syntheticCount: 12 }, lossCurve: [{ step: 1, loss: 0.5 }] },
  metrics: { final_loss: 0.5 },
  createdAt: "2026-01-02T03:04:05.000Z",
};

describe("canonicalJson", () => {
  it("gives one text whatever the key order, with no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: "x" } })).toBe('{"a":{"c":"x","d":[1,{"e":3,"f":2}]},"b":1}');
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });
});

describe("checkpointDigest", () => {
  it("is the SHA-256 of the canonical { files sorted by name, manifest }", () => {
    const text =
      '{"files":[{"name":"config.json","sha256":"' + "a".repeat(64) + '","size":10},{"name":"onnx/model.onnx","sha256":"' + "b".repeat(64) + '","size":20}],' +
      '"manifest":{"lossCurve":[{"loss":0.5,"step":1}],"mix":{"realCount":4,"syntheticCount":12},"task":"addition"}}';
    expect(checkpointDigest(record)).toBe(createHash("sha256").update(text).digest("hex"));
  });
  it("does not depend on key or file order, status or metrics; does depend on any file or manifest change", () => {
    const reordered: CheckpointRecord = {
      ...record,
      files: [...record.files].reverse(),
      manifest: { lossCurve: [{ loss: 0.5, step: 1 }], mix: { syntheticCount: 12, realCount: 4 }, task: "addition" },
      status: "promoted",
      metrics: { eval_accuracy: 1 },
    };
    expect(checkpointDigest(reordered)).toBe(checkpointDigest(record));
    const otherFile = { ...record, files: [{ ...record.files[0]!, sha256: "c".repeat(64) }, record.files[1]!] };
    expect(checkpointDigest(otherFile)).not.toBe(checkpointDigest(record));
    expect(checkpointDigest({ ...record, manifest: { ...record.manifest, task: "reverse" } })).not.toBe(checkpointDigest(record));
  });
});

describe("checkpointRefOf", () => {
  it("builds every field from the record, the uri as the files' object prefix, extra metrics on top", () => {
    const ref = checkpointRefOf(record, { metrics: { eval_accuracy: 0.9 } });
    expect(ref).toMatchObject({
      version: 3n,
      lineage: "main",
      parentVersion: 2n,
      round: 2,
      digest: checkpointDigest(record),
      uri: "nats-obj://checkpoints/main/3/",
      metrics: { final_loss: 0.5, eval_accuracy: 0.9 },
      status: CheckpointStatus.CANDIDATE,
      statusReason: "trained",
      task: "addition",
    });
    expect(ref.createdAt?.seconds).toBe(BigInt(Date.parse(record.createdAt) / 1000));
    expect(checkpointUri("main", 3)).toBe(ref.uri);
    const bare = checkpointRefOf({ ...record, manifest: {}, createdAt: "not a date" });
    expect(bare.task).toBe("");
    expect(bare.createdAt).toBeUndefined();
  });
});
