import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createTransformerConfig, initParameters, loraParamNames } from "../model/index.js";
import { createCharTokenizer } from "../tokenizer/index.js";
import {
  decodeSafetensors,
  encodeSafetensors,
  expectedAdapterShapes,
  loadLoraAdapter,
  loadModel,
  readManifest,
  saveLoraAdapter,
  saveModel,
  sha256,
  writeCheckpointFiles,
} from "./index.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "ckpt-"));
  dirs.push(d);
  return d;
}

async function expectError(p: Promise<unknown>, code: Code, ...fragments: string[]): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AutodidactError);
  expect((e as AutodidactError).code).toBe(code);
  for (const f of fragments) expect((e as Error).message).toContain(f);
}

describe("safetensors", () => {
  const tensors = {
    w: { dtype: "float32" as const, dims: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6.5) },
    d: { dtype: "float64" as const, dims: [2], data: Float64Array.of(Math.PI, -1e300) },
    i: { dtype: "int64" as const, dims: [3], data: BigInt64Array.of(1n, -2n, 9007199254740993n) },
    j: { dtype: "int32" as const, dims: [], data: Int32Array.of(-7) },
    b: { dtype: "bool" as const, dims: [3], data: Uint8Array.of(1, 0, 1) },
  };

  it("round-trips every dtype with metadata and writes the documented layout", () => {
    const bytes = encodeSafetensors(tensors, { step: "12" });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString()) as Record<string, { dtype: string; data_offsets: number[] }>;
    expect(header.w).toEqual({ dtype: "F32", shape: [2, 3], data_offsets: expect.any(Array) });
    expect(header.__metadata__).toEqual({ step: "12" });
    expect(bytes.length).toBe(8 + n + 24 + 16 + 24 + 4 + 3);
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ step: "12" });
    for (const [k, t] of Object.entries(tensors)) {
      expect(back.tensors[k]!.dtype).toBe(t.dtype);
      expect(back.tensors[k]!.dims).toEqual(t.dims);
      expect(Array.from(back.tensors[k]!.data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it("rejects truncated and corrupt files with DataLoss naming the file", () => {
    const bytes = encodeSafetensors(tensors);
    const err = (f: () => unknown): AutodidactError => {
      try {
        f();
      } catch (e) {
        return e as AutodidactError;
      }
      throw new Error("did not throw");
    };
    const trunc = err(() => decodeSafetensors(bytes.subarray(0, bytes.length - 5), "x.safetensors"));
    expect(trunc.code).toBe(Code.DataLoss);
    expect(trunc.message).toContain("x.safetensors");
    expect(trunc.message).toContain("beyond the end");
    const hdr = bytes.slice();
    new DataView(hdr.buffer).setBigUint64(0, BigInt(bytes.length), true);
    const big = err(() => decodeSafetensors(hdr, "h.safetensors"));
    expect(big.code).toBe(Code.DataLoss);
    expect(big.message).toContain("header length");
    expect(err(() => decodeSafetensors(Uint8Array.of(1, 2, 3))).code).toBe(Code.DataLoss);
    const garbled = bytes.slice();
    garbled[9] = 0x7b; // break the JSON
    garbled[10] = 0x7b;
    expect(err(() => decodeSafetensors(garbled)).code).toBe(Code.DataLoss);
    const json = JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } });
    const overlap = new Uint8Array(8 + json.length + 8);
    new DataView(overlap.buffer).setBigUint64(0, BigInt(json.length), true);
    overlap.set(Buffer.from(json), 8);
    expect(err(() => decodeSafetensors(overlap)).message).toContain("overlap");
    const f8 = JSON.stringify({ a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } });
    const quarter = new Uint8Array(8 + f8.length + 1);
    new DataView(quarter.buffer).setBigUint64(0, BigInt(f8.length), true);
    quarter.set(Buffer.from(f8), 8);
    expect(err(() => decodeSafetensors(quarter)).code).toBe(Code.Unimplemented);
  });

  it("widens float16 and bfloat16 tensors to float32", () => {
    const header = JSON.stringify({ h: { dtype: "F16", shape: [3], data_offsets: [0, 6] }, b: { dtype: "BF16", shape: [2], data_offsets: [6, 10] } });
    const bytes = new Uint8Array(8 + header.length + 10);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(header.length), true);
    bytes.set(Buffer.from(header), 8);
    const d = 8 + header.length;
    [0x3c00, 0xc000, 0x0001].forEach((v, i) => view.setUint16(d + 2 * i, v, true)); // 1, -2, 2^-24
    [0x3fc0, 0xc120].forEach((v, i) => view.setUint16(d + 6 + 2 * i, v, true)); // 1.5, -10
    const t = decodeSafetensors(bytes).tensors;
    expect([...(t.h!.data as Float32Array)]).toEqual([1, -2, 2 ** -24]);
    expect([...(t.b!.data as Float32Array)]).toEqual([1.5, -10]);
  });
});

describe("model checkpoints", () => {
  const config = createTransformerConfig({ vocabSize: 15, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 12 });
  const params = initParameters(config, 5);
  const tokenizer = createCharTokenizer({ alphabet: "0123456789+=" });

  it("saves a Hugging Face-style folder with a manifest and loads it back exactly", async () => {
    const dir = await tempDir();
    const manifest = await saveModel(dir, { config, params, tokenizer, metadata: { round: "3" } });
    expect(Object.keys(manifest.files).sort()).toEqual(["config.json", "model.safetensors", "onnx/model.onnx", "tokenizer.json", "tokenizer_config.json"]);
    const tokConfig = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
    expect(tokConfig).toMatchObject({ bos_token: "<bos>", eos_token: "<eos>", pad_token: "<pad>" });
    const weights = await readFile(join(dir, "model.safetensors"));
    expect(manifest.files["model.safetensors"]!.sha256).toBe(sha256(weights));
    const hf = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    expect(hf).toMatchObject({ model_type: "autodidact", vocab_size: 15, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 12 });
    const loaded = await loadModel(dir);
    expect(loaded.config).toEqual(config);
    expect(loaded.metadata).toEqual({ round: "3" });
    expect((await readManifest(dir)).kind).toBe("model");
    for (const [k, t] of Object.entries(params)) expect(loaded.params[k]!.data).toEqual(t.data);
    expect(loaded.tokenizer.encode("1+2=")).toEqual(tokenizer.encode("1+2="));
  });

  it("detects a flipped byte (digest mismatch), truncation (size) and a missing manifest", async () => {
    const dir = await tempDir();
    await saveModel(dir, { config, params, tokenizer, onnx: false });
    const path = join(dir, "model.safetensors");
    const good = await readFile(path);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0xff;
    await writeFile(path, flipped);
    await expectError(loadModel(dir), Code.DataLoss, "model.safetensors", "digest mismatch");
    await writeFile(path, good.subarray(0, good.length - 100));
    await expectError(loadModel(dir), Code.DataLoss, "model.safetensors", "size");
    await rm(join(dir, "manifest.json"));
    await expectError(loadModel(dir), Code.NotFound, "manifest.json");
  });

  it("rejects weights whose shapes do not match config.json (InvalidArgument naming the file)", async () => {
    const dir = await tempDir();
    await saveModel(dir, { config, params, tokenizer, onnx: false });
    // A self-consistent folder (valid digests) whose weights come from another config.
    const other = createTransformerConfig({ ...config, intermediateSize: 24 });
    await writeCheckpointFiles(dir, "model", {
      "config.json": await readFile(join(dir, "config.json"), "utf8"),
      "tokenizer.json": await readFile(join(dir, "tokenizer.json"), "utf8"),
      "model.safetensors": encodeSafetensors(initParameters(other, 1)),
    });
    await expectError(loadModel(dir), Code.InvalidArgument, "model.safetensors", "up_proj", "shape");
  });
});

describe("PEFT LoRA adapters", () => {
  const config = createTransformerConfig({ vocabSize: 15, numLayers: 2, hiddenSize: 16, numHeads: 2, intermediateSize: 32, maxPositions: 12 });
  const rank = 4;
  const targets = ["q_proj", "v_proj"];
  const adapters = Object.fromEntries(
    [...expectedAdapterShapes(config, rank, targets)].map(([name, shape]) => [
      name,
      { dtype: "float32" as const, dims: [...shape], data: new Float32Array(shape[0]! * shape[1]!).map((_, i) => i / 100) },
    ]),
  );

  it("writes adapter_config.json and PEFT tensor names, and loads them back against the base config", async () => {
    const dir = await tempDir();
    await saveLoraAdapter(dir, { adapters, rank, alpha: 8, targetModules: targets, dropout: 0.05, baseModel: "ckpt-7" });
    const cfg = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: "LORA", r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: targets, base_model_name_or_path: "ckpt-7" });
    const loaded = await loadLoraAdapter(dir, config);
    const qa = loraParamNames("model.layers.1.self_attn.q_proj.weight").a;
    expect(qa).toBe("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
    expect(loaded.adapters[qa]!.dims).toEqual([4, 16]);
    expect(loaded.adapters[qa]!.data).toEqual(adapters[qa]!.data);
    expect(Object.keys(loaded.adapters)).toHaveLength(8);
  });

  it("rejects a rank that does not match, missing tensors, and corrupted files", async () => {
    const dir = await tempDir();
    await saveLoraAdapter(dir, { adapters, rank, alpha: 8, targetModules: targets, baseModel: "b" });
    const wrongRank = await tempDir();
    await saveLoraAdapter(wrongRank, { adapters, rank: 2, alpha: 8, targetModules: targets, baseModel: "b" });
    await expectError(loadLoraAdapter(wrongRank, config), Code.InvalidArgument, "adapter_model.safetensors", "r=2");
    const missing = await tempDir();
    const { [Object.keys(adapters)[0]!]: _dropped, ...rest } = adapters;
    await saveLoraAdapter(missing, { adapters: rest, rank, alpha: 8, targetModules: targets, baseModel: "b" });
    await expectError(loadLoraAdapter(missing, config), Code.InvalidArgument, "missing adapter tensor");
    const corrupt = await tempDir();
    await mkdir(corrupt, { recursive: true });
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]) await copyFile(join(dir, f), join(corrupt, f));
    const w = await readFile(join(corrupt, "adapter_model.safetensors"));
    w[w.length - 1] = w[w.length - 1]! ^ 1;
    await writeFile(join(corrupt, "adapter_model.safetensors"), w);
    await expectError(loadLoraAdapter(corrupt, config), Code.DataLoss, "adapter_model.safetensors", "digest mismatch");
  });
});
