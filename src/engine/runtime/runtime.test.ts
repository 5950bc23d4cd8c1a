import { afterAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createGraphBuilder, serialize } from "../graph/index.js";
import { createModelWorker, createSession, createWorkerPool, cudaAvailable, tensor, zeros } from "./index.js";

function matmulModel(dtype: "float32" | "float64", n: number | string): Uint8Array {
  const b = createGraphBuilder("mm");
  const x = b.input("x", dtype, [n, n]);
  const y = b.input("y", dtype, [n, n]);
  const z = b.matMul(x, y);
  b.output(b.add(z, x), "z");
  return serialize(b.buildModel());
}

function jsMatmulPlusX(x: ArrayLike<number>, y: ArrayLike<number>, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += (x[i * n + k] as number) * (y[k * n + j] as number);
      out.push(s + (x[i * n + j] as number));
    }
  return out;
}

describe("in-thread session", () => {
  it("runs float32 and float64 graphs and reports metadata", async () => {
    for (const dtype of ["float32", "float64"] as const) {
      const s = await createSession(matmulModel(dtype, "n"));
      expect(s.executionProvider).toBe("cpu");
      expect(s.inputs.map((i) => [i.name, i.dtype, i.shape])).toEqual([
        ["x", dtype, ["n", "n"]],
        ["y", dtype, ["n", "n"]],
      ]);
      const x = Array.from({ length: 9 }, (_, i) => i * 0.5 - 2);
      const y = Array.from({ length: 9 }, (_, i) => (i % 4) - 1.5);
      const Arr = dtype === "float32" ? Float32Array : Float64Array;
      const out = await s.run({ x: tensor(dtype, [3, 3], Arr.from(x)), y: tensor(dtype, [3, 3], Arr.from(y)) });
      expect(out.z?.dims).toEqual([3, 3]);
      const want = jsMatmulPlusX(x, y, 3);
      Array.from(out.z!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(want[i] as number, 5));
      await s.release();
    }
  });

  it("writes into pre-allocated outputs", async () => {
    const s = await createSession(matmulModel("float32", 2));
    const pre = zeros("float32", [2, 2]);
    const out = await s.run(
      { x: tensor("float32", [2, 2], Float32Array.of(1, 2, 3, 4)), y: tensor("float32", [2, 2], Float32Array.of(1, 0, 0, 1)) },
      ["z"],
      { z: pre },
    );
    expect(out.z).toBe(pre);
    expect(Array.from(pre.data)).toEqual([2, 4, 6, 8]);
  });

  it("selects the execution provider: auto falls back to CPU, cuda fails clearly without it", async () => {
    const auto = await createSession(matmulModel("float32", 2), { executionProvider: "auto" });
    expect(auto.executionProvider).toBe(cudaAvailable() ? "cuda" : "cpu");
    if (!cudaAvailable()) {
      const err = await createSession(matmulModel("float32", 2), { executionProvider: "cuda" }).catch((e: unknown) => e);
      expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
    }
  });

  it("rejects a corrupt model with InvalidArgument", async () => {
    const err = await createSession(Uint8Array.of(1, 2, 3, 4, 5)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
  });
});

describe("model worker", () => {
  const worker = createModelWorker();
  const pool = createWorkerPool({ size: 2 });
  afterAll(async () => {
    await worker.close();
    await pool.close();
  });

  it("runs off the main thread while the event loop keeps ticking", async () => {
    const n = 512;
    const session = await worker.load(matmulModel("float32", n), { intraOpThreads: 1 });
    const x = new Float32Array(n * n).map((_, i) => ((i * 7) % 13) / 13);
    const y = new Float32Array(n * n).map((_, i) => ((i * 5) % 11) / 11);
    // Timer ticks are counted only while a run is in flight. A run that blocked the event loop would
    // let none fire before it resolved, however long it took; off the main thread they keep coming.
    // Runs repeat until enough ticks were seen (bounded), so the test does not depend on speed.
    let inFlight = 0;
    let ticksDuringRuns = 0;
    const timer = setInterval(() => {
      if (inFlight > 0) ticksDuringRuns++;
    }, 1);
    const runBatch = async () => {
      inFlight++;
      try {
        return await Promise.all(Array.from({ length: 4 }, () => session.run({ x: tensor("float32", [n, n], x), y: tensor("float32", [n, n], y) })));
      } finally {
        inFlight--;
      }
    };
    let outs = await runBatch();
    for (let r = 0; r < 100 && ticksDuringRuns < 5; r++) outs = await runBatch();
    clearInterval(timer);
    expect(ticksDuringRuns).toBeGreaterThanOrEqual(5);
    const z = outs[0]!.z!;
    expect(z.dims).toEqual([n, n]);
    let s = 0;
    for (let k = 0; k < n; k++) s += (x[5 * n + k] as number) * (y[k * n + 9] as number);
    expect(z.data[5 * n + 9]).toBeCloseTo(s + (x[5 * n + 9] as number), 2);
    // Inputs were copied, not transferred.
    expect(x.length).toBe(n * n);
  });

  it("transfers feeds when asked and returns worker errors as AutodidactError", async () => {
    const session = await worker.load(matmulModel("float64", 2));
    const x = Float64Array.of(1, 2, 3, 4);
    const out = await session.run({ x: tensor("float64", [2, 2], x), y: tensor("float64", [2, 2], Float64Array.of(0, 1, 1, 0)) }, { transfer: true });
    expect(x.length).toBe(0); // detached
    expect(Array.from(out.z!.data as Float64Array)).toEqual([3, 3, 7, 7]);
    const err = await session.run({ x: tensor("float64", [2, 2], Float64Array.of(1, 2, 3, 4)) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
    await session.release();
    const gone = await session.run({}).catch((e: unknown) => e);
    expect((gone as AutodidactError).code).toBe(Code.NotFound);
  });

  it("a pool loads a session on every worker and spreads runs", async () => {
    const session = await pool.load(matmulModel("float32", 4));
    const eye = new Float32Array(16).map((_, i) => (i % 5 === 0 ? 1 : 0));
    const outs = await Promise.all(
      [1, 2, 3, 4].map((k) => session.run({ x: tensor("float32", [4, 4], new Float32Array(16).fill(k)), y: tensor("float32", [4, 4], eye) })),
    );
    expect(outs.map((o) => o.z!.data[0])).toEqual([2, 4, 6, 8]);
  });

  it("a pool replaces a crashed worker and reloads its sessions", async () => {
    const p = createWorkerPool({ size: 1 });
    try {
      const session = await p.load(matmulModel("float32", 2));
      const feeds = { x: tensor("float32", [2, 2], Float32Array.of(1, 2, 3, 4)), y: tensor("float32", [2, 2], Float32Array.of(1, 0, 0, 1)) };
      const crashed = await p.call(new URL("./fixtures/crash.ts", import.meta.url), "crash", null).catch((e: unknown) => e);
      expect((crashed as AutodidactError).code).toBe(Code.Unavailable);
      expect(p.restarts).toBe(1);
      const out = await session.run(feeds);
      expect(Array.from(out.z!.data as Float32Array)).toEqual([2, 4, 6, 8]);
    } finally {
      await p.close();
    }
  });
});
