// A small hand-built DemoReport for the report's tests (three runs: default, no-consensus, replace; three
// rounds of two lineages each) and a PNG decoder that checks our encoder independently of it.
import { crc32 as zlibCrc32, inflateSync } from "node:zlib";
import type { DemoReport, DemoRound, DemoRun, LineageRound } from "./types.js";

const acc = (values: readonly number[]): { length: number; accuracy: number }[] => values.map((accuracy, i) => ({ length: i + 1, accuracy }));

function lineage(name: string, round: number, accuracy: readonly number[], frontier: number, status: LineageRound["status"], lossScale: number): LineageRound {
  return {
    lineage: name,
    candidateVersion: round + 1,
    promotedVersion: status === "promoted" ? round + 1 : round,
    status,
    reasons: status === "promoted" ? [] : [`accuracy at length ${frontier} fell below the parent's`],
    accuracyByLength: acc(accuracy),
    frontier,
    loss: Array.from({ length: 12 }, (_, s) => [s * 10, Number((lossScale * Math.exp(-s / 4) + 0.05 * round).toFixed(4))] as const),
  };
}

function run(name: string, consensus: boolean, data: DemoRun["data"], shift: number, gain: number): DemoRun {
  const rounds: DemoRound[] = [1, 2, 3].map((round) => {
    // Lengths up to `reach` are mastered, the next one part-way, the rest barely; every round differs a little.
    const reach = 3 + Math.floor(round * gain);
    const accuracy = [1, 2, 3, 4, 5, 6, 7].map((len) =>
      Number((len <= reach ? 0.99 - 0.003 * len - shift * 0.02 * round : len === reach + 1 ? 0.6 - shift / 2 + 0.05 * round : Math.max(0, 0.1 - shift / 10 - 0.01 * round)).toFixed(4)),
    );
    const firstBelow = accuracy.findIndex((a) => a < 0.95);
    const f = firstBelow === -1 ? accuracy.length : firstBelow;
    const proposed = 200 + 10 * round + Math.round(shift * 40);
    const accepted = consensus ? 150 + 7 * round - Math.round(shift * 40) : proposed;
    const status: LineageRound["status"] = round === 3 && shift > 0 ? "rejected" : "promoted";
    return {
      round,
      labelLength: 3 + round,
      proposed,
      accepted,
      acceptedLabelAccuracy: round === 2 && name === "replace" ? null : Number((0.97 - shift * 0.3 - 0.01 * round).toFixed(3)),
      proposedLabelAccuracy: Number((0.8 - shift * 0.2 - 0.05 * round).toFixed(3)),
      poolSize: data === "accumulate" ? accepted * round : accepted,
      accuracyByLength: acc(accuracy),
      frontier: f,
      status,
      lineages: [lineage(`${name}-gen`, round, accuracy, f, status, 2 + shift + round * 0.3), lineage(`${name}-b`, round, accuracy.map((a) => a * 0.9), f - 1, "rejected", 3)],
      seconds: 30 + round,
      phaseSeconds: { serve: 1, propose: 3, judge: 2, train: 20 + round, gate: 4 },
    };
  });
  return {
    name,
    description: `consensus ${consensus ? "on" : "off"}, data ${data === "accumulate" ? "accumulates" : "is replaced"}`,
    consensus,
    data,
    base: { frontier: 3, accuracyByLength: acc([1, 0.99, 0.96, 0.2, 0.01, 0, 0]) },
    rounds,
    seconds: 100 + shift * 10,
    stateDir: `/tmp/autodidact-demo/${name}`,
  };
}

/** The report the tests render: three runs side by side, a dashboard URL, a nested config. */
export function sampleReport(): DemoReport {
  return {
    format: "autodidact.demo-report/1",
    createdAt: "2026-11-25T09:00:00.000Z",
    task: "addition-reversed",
    config: { recipe: "quick", rounds: 3, samples: 200, model: { layers: 2, dModel: 64 }, critics: ["sympy-check", "self-consistency"], seeds: [1, 2] },
    frontierThreshold: 0.95,
    frontierFrom: 1,
    runs: [run("default", true, "accumulate", 0, 1), run("no-consensus", false, "accumulate", 0.5, 0), run("replace", true, "replace", 0.25, 0.5)],
    dashboardUrl: "http://127.0.0.1:8787/",
  };
}

/** A PNG parsed back by the tests, independently of the encoder (zlib's own crc32 and inflate). */
export interface DecodedPng {
  readonly chunks: readonly { readonly type: string; readonly length: number; readonly crcOk: boolean }[];
  readonly width: number;
  readonly height: number;
  readonly bitDepth: number;
  readonly colorType: number;
  /** The filter byte of every scanline. */
  readonly filters: readonly number[];
  /** Unfiltered RGB pixels, row-major. */
  readonly rgb: Uint8Array;
}

/** Parses an 8-bit RGB PNG: checks the signature, reads every chunk, inflates and unfilters IDAT. */
export function decodePng(png: Buffer): DecodedPng {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!signature.every((b, i) => png[i] === b)) throw new Error("bad PNG signature");
  const chunks: { type: string; length: number; crcOk: boolean }[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | undefined;
  let off = 8;
  while (off < png.length) {
    const length = png.readUInt32BE(off);
    const type = png.toString("latin1", off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + length);
    const crc = png.readUInt32BE(off + 8 + length);
    chunks.push({ type, length, crcOk: zlibCrc32(png.subarray(off + 4, off + 8 + length)) === crc });
    if (type === "IHDR") ihdr = Buffer.from(data);
    if (type === "IDAT") idat.push(Buffer.from(data));
    off += 12 + length;
  }
  if (ihdr === undefined) throw new Error("no IHDR");
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  if (raw.length !== (stride + 1) * height) throw new Error(`IDAT inflates to ${raw.length} bytes, expected ${(stride + 1) * height}`);
  const rgb = new Uint8Array(stride * height);
  const filters: number[] = [];
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    filters.push(f);
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= 3 ? rgb[y * stride + i - 3]! : 0;
      const b = y > 0 ? rgb[(y - 1) * stride + i]! : 0;
      const c = i >= 3 && y > 0 ? rgb[(y - 1) * stride + i - 3]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : f === 4 ? paeth : Number.NaN;
      if (Number.isNaN(pred)) throw new Error(`bad filter byte ${f} on scanline ${y}`);
      rgb[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { chunks, width, height, bitDepth: ihdr[8]!, colorType: ihdr[9]!, filters, rgb };
}

/** Pixels of exactly colour `hex` inside the box (x, y, w, h) of a decoded PNG. */
export function countColor(png: DecodedPng, hex: string, box: { x: number; y: number; w: number; h: number }): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let y = Math.max(0, box.y); y < Math.min(png.height, box.y + box.h); y++) {
    for (let x = Math.max(0, box.x); x < Math.min(png.width, box.x + box.w); x++) {
      const i = (y * png.width + x) * 3;
      if (png.rgb[i] === r && png.rgb[i + 1] === g && png.rgb[i + 2] === b) n++;
    }
  }
  return n;
}
