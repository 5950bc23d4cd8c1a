/**
 * Engine benchmark (on demand: `npm run bench:engine`, never part of `npm test`;
 * `npm run bench:engine -- --size smollm-135m|gpt2-124m` runs the real-size mode of hf-bench.ts).
 *
 * One run measures, on the reference model (vocab 16, 4 layers, width 128, 4 heads, MLP 512,
 * sequence 48, batch 64), with 2 threads for both engines:
 *  - training tokens/s (full fine-tune, AdamW) for the engine and PyTorch, and the ratio;
 *  - a LoRA (rank 8) step vs a full step;
 *  - generation tokens/s with a KV cache at batch 1 and 64 for both, and the ratios (the engine
 *    decodes greedily as services do: the whole loop in one run of its greedy decoding graph,
 *    with 1 thread at batch 1);
 *  - the machine's MatMul peak GFLOP/s (measured by ORT here) and model-FLOPs utilization
 *    6 × params × tokens/s / peak;
 *  - parity: the same weights in PyTorch give the same logits (max |Δ| ≤ 1e-4).
 * Every rate uses the fastest of several timed repetitions, for both engines, and the peak is the
 * best of two measurements: on a shared machine that is the least contended estimate. PyTorch is
 * measured with OpenBLAS at 2 threads and at 1 (see {@link bestTorch}); each of its figures is
 * the better of the two. Training runs in {@link TRAIN_ROUNDS} rounds that alternate the engine
 * and PyTorch, each side keeping its best round.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeSafetensors } from "../../src/engine/checkpoint/safetensors.js";
import { decodeBatch } from "../../src/engine/generate/decode.js";
import { createGraphBuilder } from "../../src/engine/graph/builder.js";
import { serialize } from "../../src/engine/graph/serialize.js";
import { REFERENCE_CONFIG } from "../../src/engine/model/config.js";
import { initParameters, parameterCount } from "../../src/engine/model/params.js";
import { buildForwardGraph, buildGreedyDecodingGraph, buildServingGraph } from "../../src/engine/model/transformer.js";
import { createRng } from "../../src/engine/random.js";
import { createSession } from "../../src/engine/runtime/session.js";
import type { TensorMap } from "../../src/engine/runtime/tensor.js";
import type { Batch } from "../../src/engine/train/batch.js";
import { TrainerCore } from "../../src/engine/train/trainer-core.js";

const THREADS = 2;
const BATCH = 64;
const SEQ = 48;
const PROMPT = 8;
const NEW_TOKENS = SEQ - PROMPT;
const TRAIN_STEPS = Number(process.env.BENCH_TRAIN_STEPS ?? 20);
const GEN_REPEATS = Number(process.env.BENCH_GEN_REPEATS ?? 15);
const config = REFERENCE_CONFIG;

const now = (): number => performance.now();

/**
 * Seconds per call: the fastest of `repeats` individually timed calls. On a shared machine the
 * minimum is the measurement least distorted by other tenants (both engines are timed this way).
 */
async function timeIt(fn: () => Promise<unknown>, repeats: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    const t0 = now();
    await fn();
    best = Math.min(best, now() - t0);
  }
  return best / 1000;
}

/** Best MatMul throughput of ORT on square float32 products (the machine's practical peak). */
async function matmulPeak(): Promise<{ gflops: number; size: number }> {
  let best = { gflops: 0, size: 0 };
  for (const n of [512, 1024, 2048]) {
    const b = createGraphBuilder("peak");
    const a = b.input("a", "float32", [n, n]);
    const w = b.input("b", "float32", [n, n]);
    b.output(b.matMul(a, w), "y");
    const s = await createSession(serialize(b.buildModel()), { intraOpThreads: THREADS, interOpThreads: 1 });
    const rng = createRng(n);
    const feeds: TensorMap = {
      a: { dtype: "float32", dims: [n, n], data: Float32Array.from({ length: n * n }, () => rng.normal()) },
      b: { dtype: "float32", dims: [n, n], data: Float32Array.from({ length: n * n }, () => rng.normal()) },
    };
    const sec = await timeIt(() => s.run(feeds), n >= 2048 ? 3 : 10);
    await s.release();
    const gflops = (2 * n * n * n) / sec / 1e9;
    if (gflops > best.gflops) best = { gflops, size: n };
  }
  return best;
}

function randomBatch(seed: number): Batch {
  const rng = createRng(seed);
  const n = BATCH * SEQ;
  return {
    batchSize: BATCH,
    seqLen: SEQ,
    inputIds: BigInt64Array.from({ length: n }, () => BigInt(rng.int(config.vocabSize))),
    targets: BigInt64Array.from({ length: n }, () => BigInt(rng.int(config.vocabSize))),
    mask: new Float32Array(n).fill(1),
  };
}

/** Best wall seconds per step, and mean process CPU seconds per step (all threads). */
async function trainStep(mode: "full" | "lora", targetModules?: string[]): Promise<{ wall: number; cpu: number }> {
  const core = await TrainerCore.create({
    config,
    weights: initParameters(config, 1),
    mode,
    ...(mode === "lora" ? { lora: { rank: 8, alpha: 16, targetModules: targetModules ?? ["q_proj", "v_proj"] } } : {}),
    optimizer: { lr: 1e-4, weightDecay: 0.01 },
    batchSize: BATCH,
    seqLen: SEQ,
    threads: THREADS,
  });
  const batch = randomBatch(7);
  const c0 = process.cpuUsage();
  const wall = await timeIt(() => core.step(batch), TRAIN_STEPS);
  const used = process.cpuUsage(c0);
  await core.release();
  return { wall, cpu: (used.user + used.system) / 1e6 / (TRAIN_STEPS + 2) };
}

/**
 * Generation through the graphs services decode with: `openDecoder` loads the buffer-layout
 * decoding graph and, for greedy requests, the greedy decoding graph (the whole loop in one run)
 * of our folders, and `decodeBatch` routes this greedy request to the latter. Both batch sizes
 * use {@link THREADS} intra-op threads, as PyTorch does here and as services do by default (ORT's
 * default is one thread per core): with the whole decode in one run, a second thread halves the
 * weights each core streams per step (3.1 MB, more than one core's L2), 6,222 vs 4,871 tok/s best
 * of 40 at batch 1 on a quiet machine (before the loop, the per-op wake-up of a second thread cost
 * more than it gained: 0.6 vs 0.25 ms/step).
 */
async function generationRate(params: ReturnType<typeof initParameters>, batch: number): Promise<number> {
  const options = { intraOpThreads: THREADS, interOpThreads: 1 };
  const s = await createSession(serialize(buildServingGraph(config, params, { kvLayout: "buffer" })), options);
  const greedyLoop = await createSession(serialize(buildGreedyDecodingGraph(config, params)), options);
  const rng = createRng(batch);
  const prompts = Array.from({ length: batch }, () => Array.from({ length: PROMPT }, () => rng.int(config.vocabSize)));
  const sec = await timeIt(() => decodeBatch(s, { prompts, maxNewTokens: NEW_TOKENS, greedy: true, padId: 0 }, { greedyLoop }), GEN_REPEATS, 1);
  await s.release();
  await greedyLoop.release();
  return (batch * NEW_TOKENS) / sec;
}

/** One measurement, run in its own process (see {@link main}); returns a JSON-able result. */
async function runPart(part: string, work: string | undefined): Promise<unknown> {
  switch (part) {
    case "train-full":
      return trainStep("full");
    case "train-lora-qv":
      return trainStep("lora");
    case "train-lora-all":
      return trainStep("lora", ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]);
    case "gen-1":
      return generationRate(initParameters(config, "bench"), 1);
    case "gen-64":
      return generationRate(initParameters(config, "bench"), 64);
    case "peak": {
      const a = await matmulPeak();
      const b = await matmulPeak();
      return a.gflops >= b.gflops ? a : b;
    }
    case "parity": {
      if (work === undefined) throw new Error("parity needs a work directory");
      const params = initParameters(config, "bench");
      const parityShape = [2, SEQ];
      const rng = createRng("parity");
      const ids = BigInt64Array.from({ length: 2 * SEQ }, () => BigInt(rng.int(config.vocabSize)));
      const fwd = buildForwardGraph(config, { batch: 2, seq: SEQ });
      const fs = await createSession(serialize(fwd.model), { intraOpThreads: THREADS });
      const out = await fs.run({ input_ids: { dtype: "int64", dims: parityShape, data: ids }, ...params }, ["logits"]);
      await fs.release();
      const logits = out["logits"]!.data as Float32Array;
      writeFileSync(join(work, "weights.safetensors"), encodeSafetensors(params, { format: "pt" }));
      writeFileSync(join(work, "parity_ids.bin"), new Uint8Array(ids.buffer));
      writeFileSync(join(work, "parity_logits.bin"), new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
      writeFileSync(
        join(work, "spec.json"),
        JSON.stringify({
          config,
          threads: THREADS,
          batch: BATCH,
          seq: SEQ,
          promptLen: PROMPT,
          newTokens: NEW_TOKENS,
          trainSteps: TRAIN_STEPS,
          genRepeats: GEN_REPEATS,
          genBatches: [1, 64],
          parityShape,
        }),
      );
      return null;
    }
    default:
      throw new Error(`unknown bench part ${part}`);
  }
}

/**
 * Runs every measurement in a fresh process: within one process, sessions created after others
 * were released measured up to 2x slower here, which would bias whatever is measured last.
 */
function spawnPart<T>(part: string, work?: string): T {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ["--import", "tsx", self, part, ...(work ? [work] : [])], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(r.stderr);
    throw new Error(`bench part ${part} failed (exit ${r.status})`);
  }
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
}

/** PyTorch's thread settings tried: intra-op (OpenMP) threads always {@link THREADS}; OpenBLAS's own pool varies. */
const TORCH_BLAS_THREADS = [THREADS, 1] as const;

/** Alternating engine/PyTorch training measurements (see {@link main}). */
const TRAIN_ROUNDS = Number(process.env.BENCH_TRAIN_ROUNDS ?? 3);

type TorchResult = Record<string, number | string>;

/** One run of torch_bench.py in `mode` with OpenBLAS at `blas` threads. */
function runTorch(work: string, mode: "train" | "infer", blas: number): TorchResult {
  const script = fileURLToPath(new URL("./torch_bench.py", import.meta.url));
  const py = spawnSync("/usr/bin/python3", [script, work, mode], {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: String(THREADS), OPENBLAS_NUM_THREADS: String(blas), MKL_NUM_THREADS: String(blas) },
  });
  if (py.status !== 0) {
    console.error(py.stderr);
    throw new Error(`PyTorch benchmark failed (exit ${py.status})`);
  }
  return { ...(JSON.parse(py.stdout.trim().split("\n").pop()!) as TorchResult), blasThreads: blas };
}

/**
 * The peer at its best: Debian's PyTorch runs element-wise ops on its OpenMP pool and GEMMs on
 * OpenBLAS's pthread pool, and with both pools at {@link THREADS} the two spin against each other
 * on 2 cores (here 2026-12-03: training 7,291 vs 15,652 tokens/s with OpenBLAS at 1 thread, the
 * GEMM then running in the calling thread). Each setting in {@link TORCH_BLAS_THREADS} is measured
 * and every PyTorch figure is the best of them, so the ratios never rest on a misconfigured peer.
 */
function bestTorch(work: string, mode: "train" | "infer"): TorchResult[] {
  return TORCH_BLAS_THREADS.map((blas) => runTorch(work, mode, blas));
}

/** The run with the highest `key`. */
function bestBy(runs: readonly TorchResult[], key: string): TorchResult {
  return runs.reduce((a, b) => ((b[key] as number) > (a[key] as number) ? b : a));
}

async function main(): Promise<void> {
  const nParams = parameterCount(config);
  console.log(`reference model: ${nParams} parameters, batch ${BATCH} × seq ${SEQ}, ${THREADS} threads`);
  // Other tenants skew every number below; the load average says how much.
  const loadStart = loadavg()[0]!;
  console.log(`load average at start: ${loadStart.toFixed(2)}`);

  type Train = { wall: number; cpu: number };
  const work = mkdtempSync(join(tmpdir(), "engine-bench-"));
  let torch: TorchResult;
  let full: Train | undefined;
  let loraSec: number;
  let loraAllSec: number;
  let engineGen: Record<number, number>;
  try {
    spawnPart<null>("parity", work);
    // Training alternates engine and PyTorch runs: other tenants of this shared machine slow both
    // sides by 20 % or more for minutes at a time, so each side's best comes from several moments.
    console.log(`training, ${TRAIN_ROUNDS} alternating rounds (tokens/s; PyTorch with OpenBLAS at ${TORCH_BLAS_THREADS.join(" / ")} threads):`);
    const torchTrain: TorchResult[] = [];
    for (let r = 1; r <= TRAIN_ROUNDS; r++) {
      const e = spawnPart<Train>("train-full");
      if (full === undefined || e.wall < full.wall) full = e;
      const t = bestTorch(work, "train");
      torchTrain.push(...t);
      const rates = t.map((x) => x["trainTokensPerSec"] as number);
      const engineRate = (BATCH * SEQ) / e.wall;
      console.log(`  round ${r}: engine ${engineRate.toFixed(0)} (${(e.wall * 1000).toFixed(1)} ms/step), PyTorch ${rates.map((x) => x.toFixed(0)).join(" / ")}, ratio ${(engineRate / Math.max(...rates)).toFixed(2)}`);
    }
    loraSec = spawnPart<Train>("train-lora-qv").wall;
    loraAllSec = spawnPart<Train>("train-lora-all").wall;
    engineGen = { 1: spawnPart<number>("gen-1"), 64: spawnPart<number>("gen-64") };
    const infer = bestTorch(work, "infer");
    for (const x of infer) {
      console.log(`PyTorch generation, OpenBLAS ${x["blasThreads"]} thread(s): b1 ${(x["genTokensPerSec_b1"] as number).toFixed(0)}, b64 ${(x["genTokensPerSec_b64"] as number).toFixed(0)} tokens/s`);
    }
    const train = bestBy(torchTrain, "trainTokensPerSec");
    torch = { ...train, trainBlasThreads: train["blasThreads"]!, parityMaxAbsDiff: Math.max(...infer.map((x) => x["parityMaxAbsDiff"] as number)) };
    for (const key of ["genTokensPerSec_b1", "genTokensPerSec_b64"]) {
      const best = bestBy(infer, key);
      torch[key] = best[key]!;
      torch[`${key}BlasThreads`] = best["blasThreads"]!;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const fullSec = full!.wall;
  const engineTrain = (BATCH * SEQ) / fullSec;

  const peak = spawnPart<{ gflops: number; size: number }>("peak");
  console.log(`ORT MatMul peak: ${peak.gflops.toFixed(1)} GFLOP/s (n=${peak.size})`);

  const mfu = (6 * nParams * engineTrain) / (peak.gflops * 1e9);
  const torchTrain = torch["trainTokensPerSec"] as number;
  const rows: [string, string, string, string, string][] = [
    ["metric", "engine", "pytorch", "ratio", "target"],
    ["training tokens/s (full, AdamW)", engineTrain.toFixed(0), torchTrain.toFixed(0), (engineTrain / torchTrain).toFixed(2), ">= 3"],
    [
      "training CPU-ms/step, all threads (less load-sensitive)",
      (full!.cpu * 1000).toFixed(0),
      ((torch["trainCpuSecPerStep"] as number) * 1000).toFixed(0),
      ((torch["trainCpuSecPerStep"] as number) / full!.cpu).toFixed(2),
      ">= 3",
    ],
    ["generation tokens/s, batch 1", engineGen[1]!.toFixed(0), (torch["genTokensPerSec_b1"] as number).toFixed(0), (engineGen[1]! / (torch["genTokensPerSec_b1"] as number)).toFixed(2), ">= 3"],
    ["generation tokens/s, batch 64", engineGen[64]!.toFixed(0), (torch["genTokensPerSec_b64"] as number).toFixed(0), (engineGen[64]! / (torch["genTokensPerSec_b64"] as number)).toFixed(2), ">= 2"],
    ["LoRA r8 (q,v) step / full step", `${(loraSec * 1000).toFixed(1)} / ${(fullSec * 1000).toFixed(1)} ms`, "", (loraSec / fullSec).toFixed(2), "< 1"],
    ["LoRA r8 (all linears) step / full step", `${(loraAllSec * 1000).toFixed(1)} / ${(fullSec * 1000).toFixed(1)} ms`, "", (loraAllSec / fullSec).toFixed(2), "< 1"],
    ["MFU (6·params·tokens/s / peak)", `${(100 * mfu).toFixed(1)}%`, "", "", ">= 40%"],
    ["parity max |logit diff|", (torch["parityMaxAbsDiff"] as number).toExponential(2), "", "", "<= 1e-4"],
  ];
  console.log(`load average at start/end: ${loadStart.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} (2 cores; > 2 means contention)`);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
  console.log(JSON.stringify({ loadavg: [loadStart, loadavg()[0]], peakGflops: peak.gflops, params: nParams, engine: { trainTokensPerSec: engineTrain, fullStepMs: fullSec * 1000, fullStepCpuMs: full!.cpu * 1000, loraStepMs: loraSec * 1000, loraAllStepMs: loraAllSec * 1000, gen: engineGen, mfu }, torch }));
}


const [part, workDir] = process.argv.slice(2);
if (part === "--size") {
  // Real-size mode (SmolLM-135M / GPT-2 small, Hugging Face layout): see hf-bench.ts.
  import("./hf-bench.js")
    .then((m) => m.runSizeBench(workDir ?? ""))
    .catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
} else if (part !== undefined) {
  runPart(part, workDir).then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
