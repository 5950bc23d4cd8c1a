import { create, toBinary } from "@bufbuild/protobuf";
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { openRoundJournal } from "./round-journal.js";
import { openTrainingSet, sampleFromDecision } from "./training-set.js";

const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), "trainer-unit-"));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const sample = (id: string, task = "addition") => ({ sampleId: id, task, prompt: "12+34=", completion: "64", difficulty: 2, votes: [], outcome: "", decidedAt: "" });

describe("training set", () => {
  it("deduplicates by sample id, survives a reopen and a torn last line", async () => {
    const path = join(await tempDir(), "ts.jsonl");
    const ts = await openTrainingSet(path);
    expect(await ts.add(sample("a"))).toBe(true);
    expect(await ts.add(sample("b"))).toBe(true);
    expect(await ts.add(sample("a"))).toBe(false);
    expect(await ts.add(sample("x", "reverse"))).toBe(true);
    expect(ts.count("addition")).toBe(2);
    await ts.close();
    await appendFile(path, '{"sampleId":"torn","task":"addi'); // a crash mid-write
    const again = await openTrainingSet(path);
    expect(again.samples("addition").map((s) => [s.sampleId, s.index])).toEqual([["a", 0], ["b", 1]]);
    expect(again.has("torn")).toBe(false);
    expect(await again.add(sample("c"))).toBe(true);
    await again.close();
    const third = await openTrainingSet(path);
    expect(third.samples("addition", 1).map((s) => s.sampleId)).toEqual(["b", "c"]);
    expect(third.samples("reverse").map((s) => s.sampleId)).toEqual(["x"]);
    await third.close();
    expect((await readFile(path, "utf8")).split("\n").filter((l) => l.includes('"c"')).length).toBe(1);
  });

  it("admits only accepted decisions carrying their sample; malformed ones are InvalidArgument", () => {
    const decision = (accepted: boolean, sampleId = "s1") =>
      toBinary(DecisionSchema, create(DecisionSchema, { sampleId, task: "addition", accepted, sample: { id: "s1", task: "addition", prompt: "1+2=", completion: "3" }, votes: [{ criticId: "c", approve: accepted }] }));
    expect(sampleFromDecision(decision(false))).toBeUndefined();
    expect(sampleFromDecision(decision(true))).toMatchObject({ sampleId: "s1", votes: [{ criticId: "c", approve: true }] });
    const codeOf = (data: Uint8Array): Code | undefined => {
      try {
        sampleFromDecision(data);
        return undefined;
      } catch (e) {
        return (e as AutodidactError).code;
      }
    };
    expect(codeOf(decision(true, "other"))).toBe(Code.InvalidArgument);
    expect(codeOf(new TextEncoder().encode("\u00ff\u00ff garbage"))).toBe(Code.InvalidArgument);
  });
});

describe("round journal", () => {
  it("replays plans, allocations, candidates and ends; unfinished rounds are the ones to resume", async () => {
    const path = join(await tempDir(), "rounds.jsonl");
    const j = await openRoundJournal(path);
    const plan = { round: 1, task: "addition", lineages: ["a", "b"], parents: { a: 1, b: 1 }, mode: "lora" as const, mixMode: "accumulate" as const, from: 0, to: 5, maxSamples: 0, anchorRatio: 0.25, steps: 0, batchSize: 8, maxReuse: 1, lr: 1e-3, loraRank: 4, loraAlpha: 8, seed: "s" };
    await j.append({ kind: "start", plan });
    await j.append({ kind: "allocated", round: 1, lineage: "a", version: 2 });
    await j.append({ kind: "candidate", round: 1, lineage: "a", version: 2 });
    await j.append({ kind: "start", plan: { ...plan, round: 2 } });
    await j.append({ kind: "end", round: 2, status: "aborted", reason: "nan" });
    await j.close();
    await appendFile(path, '{"kind":"allocated","rou');
    const r = await openRoundJournal(path);
    expect(r.unfinished().map((s) => s.plan.round)).toEqual([1]);
    expect(r.get(1)!.candidates.get("a")).toBe(2);
    expect(r.get(1)!.allocated.has("b")).toBe(false);
    expect(r.get(2)!.end).toEqual({ status: "aborted", reason: "nan" });
    expect(r.lastRound()).toBe(2);
    await r.close();
  });
});
