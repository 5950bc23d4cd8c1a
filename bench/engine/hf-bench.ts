/**
 * Engine vs PyTorch at a real size (on demand: `npm run bench:engine -- --size smollm-135m` or
 * `--size gpt2-124m`; never part of `npm test`). Random weights in the Hugging Face layout of the
 * published configurations, nothing downloaded. One run measures, each part in a fresh process:
 *  - LoRA (r 16 on q, k, v, o; GPT-2: c_attn and attn.c_proj) training tokens/s at sequence 256;
 *  - greedy generation tokens/s with a KV cache at batch 1 and 8;
 *  - peak resident memory of each of those processes;
 *  - importing the folder → first generated token (the engine only; target < 10 s);
 * next to PyTorch (torch_hf_bench.py: the same folder read by the reference implementation of
 * tests/reference/hf_reference.py, AdamW on the adapters, generation under inference_mode with a
 * preallocated static cache), whose figures are each the best over its thread settings.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { importHfModel } from "../../src/engine/checkpoint/hf-folder.js";
import { encodeSafetensors } from "../../src/engine/checkpoint/safetensors.js";
import { decodeBatch } from "../../src/engine/generate/decode.js";
import { serialize } from "../../src/engine/graph/serialize.js";
import { parseHfConfig } from "../../src/engine/model/hf/config.js";
import { toHfTensors } from "../../src/engine/model/hf/names.js";
import { initParameters, parameterCount } from "../../src/engine/model/params.js";
import { buildGreedyDecodingGraph, buildServingGraph } from "../../src/engine/model/serving.js";
import { createRng } from "../../src/engine/random.js";
import { createSession } from "../../src/engine/runtime/session.js";
import type { Batch } from "../../src/engine/train/batch.js";
import { TrainerCore } from "../../src/engine/train/trainer-core.js";

/** The published configurations (config.json as the hub has them). */
export const SIZES: Record<string, Record<string, unknown>> = {
  "smollm-135m": {
    model_type: "llama", vocab_size: 49152, hidden_size: 576, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
    intermediate_size: 1536, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 100000, hidden_act: "silu", tie_word_embeddings: true,
  },
  "gpt2-124m": { model_type: "gpt2", vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" },
};
const TARGETS: Record<string, string[]> = { "smollm-135m": ["q_proj", "k_proj", "v_proj", "o_proj"], "gpt2-124m": ["c_attn", "attn.c_proj"] };
const THREADS = 2;
const SEQ = 256;
const TRAIN_BATCH = Number(process.env.BENCH_TRAIN_BATCH ?? 2);
const TRAIN_STEPS = Number(process.env.BENCH_TRAIN_STEPS ?? 3);
const PROMPT = 16;
const NEW_TOKENS = Number(process.env.BENCH_NEW_TOKENS ?? 32);
const GEN_REPEATS = Number(process.env.BENCH_GEN_REPEATS ?? 3);

const now = (): number => performance.now();

async function best(fn: () => Promise<unknown>, repeats: number, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    const t0 = now();
    await fn();
    min = Math.min(min, now() - t0);
  }
  return min / 1000;
}

/** Writes a random checkpoint folder of `size` in the HF layout (config.json + model.safetensors). */
function makeFolder(size: string, dir: string): void {
  const json = SIZES[size]!;
  const { family, config } = parseHfConfig(json);
  writeFileSync(join(dir, "config.json"), JSON.stringify(json, null, 2));
  writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(toHfTensors(family, config, initParameters(config, "bench"))));
}

function randomBatch(vocab: number): Batch {
  const rng = createRng("hf-bench");
  const n = TRAIN_BATCH * SEQ;
  return {
    batchSize: TRAIN_BATCH,
    seqLen: SEQ,
    inputIds: BigInt64Array.from({ length: n }, () => BigInt(rng.int(vocab))),
    targets: BigInt64Array.from({ length: n }, () => BigInt(rng.int(vocab))),
    mask: new Float32Array(n).fill(1),
  };
}

async function trainLora(size: string, dir: string): Promise<number> {
  const m = await importHfModel(dir);
  const core = await TrainerCore.create({
    config: m.config,
    weights: m.params,
    mode: "lora",
    lora: { rank: 16, alpha: 32, targetModules: TARGETS[size]! },
    optimizer: { lr: 1e-4, weightDecay: 0 },
    batchSize: TRAIN_BATCH,
    seqLen: SEQ,
    threads: THREADS,
  });
  const batch = randomBatch(m.config.vocabSize);
  const sec = await best(() => core.step(batch), TRAIN_STEPS);
  await core.release();
  return (TRAIN_BATCH * SEQ) / sec;
}

async function generate(dir: string, batch: number): Promise<number> {
  const m = await importHfModel(dir);
  const options = { intraOpThreads: THREADS, interOpThreads: 1 };
  const s = await createSession(serialize(buildServingGraph(m.config, m.params, { kvLayout: "buffer" })), options);
  const greedyLoop = await createSession(serialize(buildGreedyDecodingGraph(m.config, m.params)), options);
  const rng = createRng(batch);
  const prompts = Array.from({ length: batch }, () => Array.from({ length: PROMPT }, () => rng.int(m.config.vocabSize)));
  const sec = await best(() => decodeBatch(s, { prompts, maxNewTokens: NEW_TOKENS, greedy: true, padId: 0 }, { greedyLoop }), GEN_REPEATS);
  return (batch * NEW_TOKENS) / sec;
}

/** Seconds from reading the folder to the first greedy token (the serving path: the buffer decoding graph). */
async function firstToken(dir: string): Promise<number> {
  const t0 = now();
  const m = await importHfModel(dir);
  const s = await createSession(serialize(buildServingGraph(m.config, m.params, { kvLayout: "buffer" })), { intraOpThreads: THREADS });
  await decodeBatch(s, { prompts: [[1, 2, 3, 4]], maxNewTokens: 1, greedy: true, padId: 0 });
  return (now() - t0) / 1000;
}

async function runPart(part: string, size: string, dir: string): Promise<{ value: number; maxRssMb: number }> {
  const value =
    part === "train" ? await trainLora(size, dir) : part === "gen-1" ? await generate(dir, 1) : part === "gen-8" ? await generate(dir, 8) : await firstToken(dir);
  return { value, maxRssMb: process.resourceUsage().maxRSS / 1024 };
}

function spawnPart(part: string, size: string, dir: string): { value: number; maxRssMb: number } {
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), part, size, dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`bench part ${part} failed (exit ${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { value: number; maxRssMb: number };
  console.log(`  engine ${part}: ${out.value.toFixed(2)}, peak RSS ${out.maxRssMb.toFixed(0)} MB`);
  return out;
}

type TorchResult = Record<string, number>;

function runTorch(dir: string, mode: string, blas: number): TorchResult {
  const script = fileURLToPath(new URL("./torch_hf_bench.py", import.meta.url));
  const env = { ...process.env, OMP_NUM_THREADS: String(THREADS), OPENBLAS_NUM_THREADS: String(blas), MKL_NUM_THREADS: String(blas), BENCH_SPEC: JSON.stringify({ threads: THREADS, seq: SEQ, trainBatch: TRAIN_BATCH, trainSteps: TRAIN_STEPS, prompt: PROMPT, newTokens: NEW_TOKENS, genRepeats: GEN_REPEATS }) };
  const py = spawnSync("/usr/bin/python3", [script, dir, mode], { encoding: "utf8", env });
  if (py.status !== 0) throw new Error(`PyTorch bench ${mode} failed (exit ${py.status}): ${py.stderr}`);
  return { ...(JSON.parse(py.stdout.trim().split("\n").pop()!) as TorchResult), blasThreads: blas };
}

/**
 * OpenBLAS thread counts PyTorch is measured with (OpenMP always at THREADS). Default 1 and 2;
 * `BENCH_TORCH_BLAS=1` keeps the setting bench/engine/README.md found best on this machine.
 */
const TORCH_BLAS = (process.env.BENCH_TORCH_BLAS ?? `1,${THREADS}`).split(",").map(Number);

/** PyTorch's best over {@link TORCH_BLAS}: its figure and that run's peak RSS. */
function bestTorch(dir: string, mode: string, targets: string[]): { value: number; maxRssMb: number } {
  let top = { value: 0, maxRssMb: 0 };
  for (const blas of TORCH_BLAS) {
    const r = runTorch(dir, `${mode}:${targets.join(",")}`, blas);
    console.log(`  pytorch ${mode} (OpenBLAS ${blas}): ${r.value!.toFixed(2)}, peak RSS ${r.maxRssMb!.toFixed(0)} MB`);
    if (r.value! > top.value) top = { value: r.value!, maxRssMb: r.maxRssMb! };
  }
  return top;
}

/** Parts measured (`BENCH_PARTS=first-token,gen-1,train,gen-8` by default, in that order). */
const PARTS = (process.env.BENCH_PARTS ?? "first-token,gen-1,train,gen-8").split(",");

async function main(size: string): Promise<void> {
  if (!SIZES[size]) throw new Error(`--size must be one of ${Object.keys(SIZES).join(", ")}`);
  const { config } = parseHfConfig(SIZES[size]!);
  console.log(`${size}: ${(parameterCount(config) / 1e6).toFixed(1)}M parameters, ${THREADS} threads; load average ${loadavg()[0]!.toFixed(2)}`);
  const dir = mkdtempSync(join(tmpdir(), `hf-bench-${size}-`));
  try {
    makeFolder(size, dir);
    const targets = TARGETS[size]!;
    const rows: [string, string, string, string, string][] = [["metric", "engine", "pytorch", "ratio", "target"]];
    const add = (name: string, e: { value: number; maxRssMb: number }, t: { value: number; maxRssMb: number }, target: string): void => {
      rows.push([name, e.value.toFixed(1), t.value.toFixed(1), (e.value / t.value).toFixed(2), target]);
      rows.push([`  peak RSS MB`, e.maxRssMb.toFixed(0), t.maxRssMb.toFixed(0), (e.maxRssMb / t.maxRssMb).toFixed(2), "<= 1"]);
      console.log(rows.at(-2)!.join("  "), "|", rows.at(-1)!.join("  "));
    };
    for (const part of PARTS) {
      if (part === "train") add(`LoRA r16 training tokens/s (seq ${SEQ}, batch ${TRAIN_BATCH})`, spawnPart("train", size, dir), bestTorch(dir, "train", targets), ">= 1.5");
      else if (part === "gen-1") add("generation tokens/s, batch 1", spawnPart("gen-1", size, dir), bestTorch(dir, "gen-1", targets), ">= 2");
      else if (part === "gen-8") add("generation tokens/s, batch 8", spawnPart("gen-8", size, dir), bestTorch(dir, "gen-8", targets), "");
      else if (part === "first-token") rows.push(["import folder → first token, s", spawnPart("first-token", size, dir).value.toFixed(2), "", "", "< 10"]);
      else throw new Error(`unknown part ${part}`);
    }
    console.log(`load average at end: ${loadavg()[0]!.toFixed(2)} (2 cores; > 2 means contention)`);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args.length === 3 && !args[0]!.startsWith("--")) {
  runPart(args[0]!, args[1]!, args[2]!).then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/** Entry from bench.ts: `--size NAME`. */
export async function runSizeBench(size: string): Promise<void> {
  await main(size);
}
