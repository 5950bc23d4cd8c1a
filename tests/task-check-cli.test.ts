// `autodidact task check` as a user runs it: the example module passes every check (exit 0); a pack whose
// sampler is not deterministic per seed fails (exit 1) saying so; an unknown task is bad usage (exit 2).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "./cli-support.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const example = fileURLToPath(new URL("../examples/tasks/number-words.ts", import.meta.url));

/** Runs the CLI without a configured task module directory. */
const autodidact = (args: string[]) => runCli(args, { unset: ["AUTODIDACT_TASK_MODULE_PATH"] });

/** A generator-function pack (sample + solve) whose sampler ignores its rng: Math.random. */
const NONDETERMINISTIC = `
export default ({ defineTaskPack }) => defineTaskPack({
  name: "coin", description: "copy a letter", defaultMaxShortfall: 1, heldOutSize: 4, sliceNames: [], exposeVerifier: true,
  tokenizer: { kind: "char", alphabet: [..."abcdefghijklmnopqrstuvwxyz="], special: { pad: "<pad>", bos: "<bos>", eos: "<eos>" } },
  difficulty: { min: 3, max: 3 },
  problemSpace: () => 26 ** 3,
  sample: (rng) => Array.from({ length: 3 }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join("") + "=",
  solve: (p) => p.slice(0, -1),
  checkFormat: () => ({ ok: true }),
  rareSlices: () => [],
  difficultyOf: (p) => p.length - 1,
  maxPromptLength: () => 4,
  maxAnswerLength: () => 3,
});
`;

describe("autodidact task check", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "task-check-"));
    await writeFile(join(dir, "coin.mjs"), NONDETERMINISTIC);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes the example module, fails a nondeterministic sampler, refuses an unknown task", async () => {
    const [good, bad, unknown] = await Promise.all([autodidact(["task", "check", example]), autodidact(["task", "check", join(dir, "coin.mjs")]), autodidact(["task", "check", "no-such-task"])]);
    expect(good.code, good.err).toBe(0);
    expect(good.out).toMatch(/^task number-words \(.*number-words\.ts v1\.0\.0, digest [0-9a-f]{12}\)/);
    expect(good.out).toMatch(/all checks passed/);
    expect(good.out).toMatch(/^3\s+0\s+40\s+40\s+820$/m);
    expect(bad.code, bad.err).toBe(1);
    expect(bad.out).toMatch(/FAIL {2}sampler deterministic per seed: seed 1 gave different prompts on a second draw at difficulty 3/);
    expect(bad.out).toMatch(/check\(s\) failed/);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown task "no-such-task", known: .*addition/);
  }, 120_000);
});
