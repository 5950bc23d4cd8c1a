import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../../platform/errors/index.js";
import { defineDatasetPack, loadDatasetPack, parseJsonLines, type DatasetRow } from "./index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dataset-pack-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const jsonl = (rows: readonly object[]): string => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const upper = (words: readonly string[]): object[] => words.map((w) => ({ prompt: `${w}=`, answer: w.toUpperCase() }));

async function writePack(name: string, files: Record<string, string | ArrayBuffer>, manifest: object): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  for (const [f, body] of Object.entries(files)) await writeFile(join(folder, f), typeof body === "string" ? body : Buffer.from(body));
  await writeFile(join(folder, "pack.json"), JSON.stringify(manifest));
  return folder;
}

const SPLITS = { anchor: "anchor.jsonl", validation: "validation.jsonl", test: "test.jsonl", pool: "pool.jsonl" };

async function errorOf(p: Promise<unknown>): Promise<AutodidactError> {
  try {
    await p;
  } catch (err) {
    return err as AutodidactError;
  }
  throw new Error("expected an error");
}

describe("data-set packs", () => {
  it("loads a JSONL folder: splits, difficulty by prompt length, held-out sets, pool sampler, anchor", async () => {
    const folder = await writePack(
      "upper",
      {
        "anchor.jsonl": jsonl(upper(["ab", "cd", "xyz", "qrs"])),
        "validation.jsonl": jsonl(upper(["ef", "tuv"])),
        "test.jsonl": jsonl(upper(["gh", "wxy"])),
        "pool.jsonl": jsonl(["ij", "kl", "mno", "abcd"].map((w) => ({ prompt: `${w}=` }))),
      },
      { name: "upper", version: "1.2.0", splits: SPLITS },
    );
    const pack = await loadDatasetPack(folder);
    expect(pack.version).toBe("1.2.0");
    expect(pack.difficulty).toEqual({ min: 3, max: 5 });
    expect(pack.heldOut("validation", 3).map((e) => e.answer)).toEqual(["EF"]);
    expect(pack.heldOut("test", 4).map((e) => e.prompt)).toEqual(["wxy="]);
    const a = pack.createPromptSampler({ seed: 7, difficulty: 3 }).take(6).map((p) => p.prompt);
    const b = pack.createPromptSampler({ seed: 7, difficulty: 3 }).take(6).map((p) => p.prompt);
    expect(a).toEqual(b);
    expect(new Set(a)).toEqual(new Set(["ij=", "kl="]));
    const anchor = pack.createAnchorSource({ seed: 1, minDifficulty: 3, maxDifficulty: 4 }).take(20);
    expect(new Set(anchor.map((e) => e.prompt))).toEqual(new Set(["ab=", "cd=", "xyz=", "qrs="]));
    expect(anchor.every((e) => e.answer === e.prompt.slice(0, -1).toUpperCase())).toBe(true);
    expect(pack.verifier).toBeUndefined(); // the pool carries no answers
    expect(pack.checkFormat("ij=", "EF<eos>")).toEqual({ ok: true }); // I and J never appear in an answer or prompt: not in the vocabulary
    expect(pack.checkFormat("ij=", "IJ<eos>").ok).toBe(false);
    expect(pack.checkFormat("ij=", "i!<eos>").ok).toBe(false);
    expect(pack.trainingText("ab=", " AB ")).toBe("ab=AB<eos>");
    expect(() => pack.createPromptSampler({ seed: 1, difficulty: 5 }).next()).not.toThrow();
    expect(pack.counts().anchor).toEqual(new Map([[3, 2], [4, 2]]));
  });

  it("refuses overlapping splits, naming both rows (file:line)", async () => {
    const folder = await writePack(
      "overlap",
      {
        "anchor.jsonl": jsonl(upper(["ab", "cd", "ef"])),
        "validation.jsonl": jsonl(upper(["gh"])),
        "test.jsonl": jsonl(upper(["ij", "cd"])),
        "pool.jsonl": jsonl([{ prompt: "kl=" }, { prompt: "gh=" }]),
      },
      { name: "overlap", splits: SPLITS },
    );
    const err = await errorOf(loadDatasetPack(folder));
    expect(err).toBeInstanceOf(AutodidactError);
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("test.jsonl:2");
    expect(err.message).toContain("anchor.jsonl:2");
    expect(err.message).toContain("pool.jsonl:2");
    expect(err.message).toContain("validation.jsonl:1");
    expect(err.message).toContain("2 rows");
  });

  it("reports malformed rows with their line numbers, never skipping them", async () => {
    const text = ['{"prompt":"ab=","answer":"AB"}', "", "{not json", '{"prompt":7}', '{"prompt":"cd=","difficulty":1.5}'].join("\n");
    let err: AutodidactError | undefined;
    try {
      parseJsonLines(text, "anchor.jsonl");
    } catch (e) {
      err = e as AutodidactError;
    }
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.message).toMatch(/anchor\.jsonl:3: not valid JSON/);
    expect(err?.message).toMatch(/anchor\.jsonl:4: "prompt" must be a string/);
    expect(err?.message).toMatch(/anchor\.jsonl:5: "difficulty" must be an integer/);
    expect(err?.message).not.toContain("anchor.jsonl:1");
    const folder = await writePack(
      "unlabelled-anchor",
      { "anchor.jsonl": jsonl([{ prompt: "ab=", answer: "AB" }, { prompt: "cd=" }]), "pool.jsonl": jsonl([{ prompt: "x=" }]) },
      { name: "unlabelled-anchor", splits: { anchor: "anchor.jsonl", pool: "pool.jsonl" } },
    );
    expect((await errorOf(loadDatasetPack(folder))).message).toMatch(/anchor\.jsonl:2: anchor rows need an answer/);
  });

  it("reads Parquet splits, with row numbers in errors, and keeps pool answers as ground truth only", async () => {
    const words = ["ab", "cd", "ef"];
    const anchor = parquetWriteBuffer({
      columnData: [
        { name: "prompt", data: words.map((w) => `${w}=`), type: "STRING" },
        { name: "answer", data: words.map((w) => w.toUpperCase()), type: "STRING" },
        { name: "difficulty", data: [2, 2, 2], type: "INT32" },
      ],
    });
    const pool = parquetWriteBuffer({ columnData: [{ name: "prompt", data: ["gh=", "ijk="], type: "STRING" }, { name: "answer", data: ["GH", "IJK"], type: "STRING" }] });
    const folder = await writePack("pq", { "anchor.parquet": anchor, "pool.parquet": pool, "test.jsonl": jsonl(upper(["mn"])) }, {
      name: "pq",
      splits: { anchor: "anchor.parquet", pool: "pool.parquet", test: "test.jsonl" },
    });
    const pack = await loadDatasetPack(folder);
    expect(pack.rows("anchor").map((r) => r.difficulty)).toEqual([2, 2, 2]);
    expect(pack.verifier?.check("ijk=", "IJK<eos>")).toBe(true);
    expect(pack.createPromptSampler({ seed: 1, difficulty: 4 }).next()).toEqual({ id: pack.promptId("ijk="), prompt: "ijk=", difficulty: 4 });
    const bad = parquetWriteBuffer({ columnData: [{ name: "prompt", data: ["a=", ""], type: "STRING" }] });
    const badFolder = await writePack("pq-bad", { "pool.parquet": bad }, { name: "pq-bad", splits: { pool: "pool.parquet" } });
    expect((await errorOf(loadDatasetPack(badFolder))).message).toMatch(/pool\.parquet:row 2: "prompt" is empty/);
  });

  it("refuses a manifest that names a file outside its folder or an unknown field", async () => {
    const outside = await writePack("escape", {}, { name: "escape", splits: { pool: "../upper/pool.jsonl" } });
    expect((await errorOf(loadDatasetPack(outside))).message).toMatch(/outside the pack folder/);
    const unknown = await writePack("unknown", {}, { name: "unknown", splits: {}, sampler: "x" });
    expect((await errorOf(loadDatasetPack(unknown))).message).toMatch(/unknown field "sampler"/);
  });

  it("defines a pack from rows in memory, with a difficulty function", () => {
    const row = (prompt: string, answer: string | undefined, line: number): DatasetRow => ({ prompt, source: `mem:${line}`, ...(answer ? { answer } : {}) });
    const pack = defineDatasetPack({
      name: "words",
      splits: { anchor: [row("a b=", "x", 1)], test: [row("a b c=", "y", 2)], pool: [row("d e f g=", undefined, 3)] },
      difficulty: (p) => p.split(" ").length,
    });
    expect(pack.difficulty).toEqual({ min: 2, max: 4 });
    expect(pack.difficultyOf("q r s=")).toBe(3);
    expect(() => defineDatasetPack({ name: "dup", splits: { anchor: [row("a=", "x", 1), row("a=", "y", 2)] } })).toThrow(/mem:2: prompt "a=" again in anchor at mem:1/);
  });
});
