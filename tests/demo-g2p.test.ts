// `autodidact demo --task g2p --quick`: grapheme-to-phoneme on real data (the CMU dictionary) runs one
// round through the whole mesh and its conductor (real processes, nats-server, gRPC) with the shipped
// base models (models/g2p-base): validation labels only at 3..6 letters, proposals from the unlabelled
// pool one letter longer, a report whose table shows the test split.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { DemoReport } from "../apps/report/types.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));
const SAMPLES = 32;

describe("autodidact demo --task g2p --quick", () => {
  let outDir = "";
  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("runs a g2p round through the conductor on real pronunciations", async () => {
    outDir = await mkdtemp(join(tmpdir(), "autodidact-demo-g2p-"));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NATS_URL;
    const args = [cli, "demo", "--task", "g2p", "--quick", "--rounds", "1", "--samples", String(SAMPLES), "--out", outDir, "--no-keep-open"];
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code, `${out}\n${err}`).toBe(0);

    expect(out).toContain("Autodidact demo: g2p, 3 lineages");
    expect(out).toContain("validation labels only at 3..6 (the base range); test split 3..8");
    expect(out).toMatch(/round\s+len\s+proposed\s+accepted/);
    expect(out).toContain(`decisions published: ${SAMPLES} samples, 0 decided more than once`);

    const report = JSON.parse(await readFile(join(outDir, "report.json"), "utf8")) as DemoReport;
    expect(report.task).toBe("g2p");
    const run = report.runs[0]!;
    expect(run.rounds).toHaveLength(1);
    // Round 1 labels 7-letter words from the pool (the bases know 3..6).
    expect(run.rounds[0]!.labelLength).toBe(7);
    expect(run.rounds[0]!.proposed).toBe(SAMPLES);
  }, 600_000);
});
