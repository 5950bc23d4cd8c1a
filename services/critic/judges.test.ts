import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelWorker, type OpenDecoder } from "../../src/engine/index.js";
import { SampleSchema, type Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import {
  createModelHolder,
  loadClassifierModel,
  loadDecoderModel,
  validateClassifierModel,
  validateDecoderModel,
  type ClassifierModel,
} from "../../src/domain/serving/index.js";
import { createTaskTokenizer, getTaskPack, solveAddition } from "../../src/domain/tasks/index.js";
import {
  charNgrams,
  createAcceptAllJudge,
  createClassifierJudge,
  createLikelihoodJudge,
  createModelJudge,
  createNoveltyJudge,
  createRulesJudge,
  createVerifierJudge,
  jaccard,
} from "./judges.js";
import { saveTinyClassifier, saveTinyDecoder } from "../../src/domain/serving/test-models.js";

const task = getTaskPack("addition");
const sample = (id: string, prompt: string, completion: string): Sample => create(SampleSchema, { id, task: "addition", prompt, completion });
const worker = createModelWorker({ name: "judges-test" });
let dir: string;
const decoder = createModelHolder<OpenDecoder>({ name: "decoder", validate: validateDecoderModel });
const classifier = createModelHolder<ClassifierModel>({ name: "classifier", validate: validateClassifierModel });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "judges-"));
  await saveTinyDecoder(join(dir, "dec"), 1);
  await decoder.swap(() => loadDecoderModel(worker, join(dir, "dec")));
  // Classifier: digits vote "good" (label 1), "+" and "=" vote "bad" a little, "9" votes strongly "bad".
  const tok = createTaskTokenizer(task);
  const votes: Array<[number, number]> = Array.from({ length: tok.vocabSize }, () => [0, 0]);
  for (const ch of "012345678") votes[tok.encode(ch)[0]!] = [0, 1];
  votes[tok.encode("9")[0]!] = [20, 0];
  await saveTinyClassifier(join(dir, "cls.onnx"), votes);
  await classifier.swap(() => loadClassifierModel(worker, join(dir, "cls.onnx")));
});
afterAll(async () => {
  await decoder.close();
  await classifier.close();
  await worker.close();
  await rm(dir, { recursive: true, force: true });
});

describe("critic judges on crafted samples", () => {
  const prompt = "21+43="; // reversed addition: 12 + 34 = 46, answer reversed "64"
  const right = solveAddition(prompt);

  it("rules: accepts a well-formed answer, rejects malformed and over-long ones", async () => {
    const rules = createRulesJudge({ maxCompletionChars: 4 });
    expect((await rules.judge(sample("a", prompt, right), task)).approve).toBe(true);
    const bad = await rules.judge(sample("b", prompt, "6x"), task);
    expect(bad.approve).toBe(false);
    expect(bad.reason).not.toBe("");
    const long = await rules.judge(sample("c", prompt, "64444"), task);
    expect(long).toMatchObject({ approve: false });
    expect(long.reason).toContain("limit 4");
  });

  it("verifier: approves exactly the true answer", async () => {
    const v = createVerifierJudge();
    expect((await v.judge(sample("a", prompt, right), task)).approve).toBe(true);
    const wrongAnswer = right === "64" ? "65" : "64";
    expect((await v.judge(sample("b", prompt, wrongAnswer), task)).approve).toBe(false);
  });

  it("accept-all (ablation): approves a wrong answer and a malformed one that rules and verifier reject", async () => {
    const all = createAcceptAllJudge();
    const wrongAnswer = right === "64" ? "65" : "64";
    const wrong = sample("w", prompt, wrongAnswer);
    const malformed = sample("m", prompt, "12x");
    expect((await createVerifierJudge().judge(wrong, task)).approve).toBe(false);
    expect((await createRulesJudge().judge(malformed, task)).approve).toBe(false);
    for (const s of [wrong, malformed]) expect(await all.judge(s, task)).toMatchObject({ approve: true, score: 1 });
  });

  it("novelty: rejects a near-duplicate of an accepted sample, accepts a different one and the same id", async () => {
    const nov = createNoveltyJudge({ n: 3, threshold: 0.5 });
    const first = sample("s1", "12345+54321=", "66666");
    expect((await nov.judge(first, task)).approve).toBe(true);
    nov.noteAccepted!(first);
    const dup = await nov.judge(sample("s2", "12345+54321=", "66667"), task);
    expect(dup.approve).toBe(false);
    expect(dup.reason).toContain("s1");
    expect((await nov.judge(sample("s3", "98+7=", "501"), task)).approve).toBe(true);
    expect((await nov.judge(first, task)).approve).toBe(true); // a redelivery of the accepted sample is not its own duplicate
  });

  it("novelty: rejects a prompt already labelled in an earlier round, not a repeat within the round or a redelivery", async () => {
    const nov = createNoveltyJudge();
    const at = (id: string, prompt: string, completion: string, round: number): Sample => create(SampleSchema, { id, task: "addition", prompt, completion, round });
    const first = at("r1-a", "21+93=", "141", 1);
    expect((await nov.judge(first, task)).approve).toBe(true);
    nov.noteAccepted!(first);
    // Same round, same prompt (another answer): decisions of one round race each other, so no verdict depends on their order.
    expect((await nov.judge(at("r1-b", "21+93=", "151", 1), task)).approve).toBe(true);
    // A later round proposes the same problem again (any answer): already labelled.
    const again = await nov.judge(at("r2-a", "21+93=", "151", 2), task);
    expect(again).toMatchObject({ approve: false, score: 0 });
    expect(again.reason).toBe(`already labelled: prompt ${task.promptId("21+93=")} was accepted in round 1 (sample r1-a)`);
    // The 3-gram measure alone would not have caught it: these two texts are below its default threshold.
    expect(jaccard(charNgrams("21+93=141", 3), charNgrams("21+93=151", 3))).toBeLessThan(0.8);
    // Another problem of the same length, and a redelivery of the accepted sample, pass.
    expect((await nov.judge(at("r2-b", "12+39=", "411", 2), task)).approve).toBe(true);
    expect((await nov.judge(at("r1-a", "21+93=", "141", 3), task)).approve).toBe(true);
  });

  it("classifier: HF signature model approves by label probability", async () => {
    const cls = createClassifierJudge(classifier, { label: 1, threshold: 0.5 });
    const good = await cls.judge(sample("g", "12+34=", "46"), task);
    expect(good.approve).toBe(true);
    expect(good.modelVersion).toMatch(/^sha256:[0-9a-f]{64}$/);
    const bad = await cls.judge(sample("b", "19+34=", "9"), task);
    expect(bad.approve).toBe(false);
    expect(bad.score).toBeLessThan(0.5);
  });

  it("likelihood: thresholds the mean log-prob of the completion under its model", async () => {
    const lenient = createLikelihoodJudge(decoder, { threshold: -100 });
    const strict = createLikelihoodJudge(decoder, { threshold: -0.001 });
    const s = sample("l", prompt, right);
    const a = await lenient.judge(s, task);
    const b = await strict.judge(s, task);
    expect(a.approve).toBe(true);
    expect(b.approve).toBe(false); // a random tiny model is never that sure
    expect(a.score).toBeCloseTo(b.score, 9); // same model, same likelihood
    expect(a.score).toBeGreaterThan(0);
    expect(a.modelVersion).toBe(decoder.version);
  });

  it("model: approves when its own greedy answer is equivalent, rejects otherwise", async () => {
    const own = await decoder.use(async (m) => (await m.generator.generate([prompt], { maxNewTokens: task.maxAnswerLength(2) + 1, greedy: true, addBos: true }))[0]!.text);
    const answer = task.normalize(own);
    const judge = createModelJudge(decoder);
    const agree = await judge.judge(sample("m1", prompt, answer), task);
    expect(agree.approve).toBe(true);
    const other = answer === "0" ? "1" : "0";
    const disagree = await judge.judge(sample("m2", prompt, other + answer), task);
    expect(disagree.approve).toBe(false);
    expect(disagree.reason).toContain("differs");
  });

  it("model with minLogprob: the same agreeing answer passes below its weakest token's log-prob and fails above it", async () => {
    const [own] = await decoder.use((m) => m.generator.generate([prompt], { maxNewTokens: task.maxAnswerLength(2) + 1, greedy: true, addBos: true }));
    const answer = task.normalize(own!.text);
    const weakest = Math.min(...own!.logprobs);
    expect(weakest).toBeLessThan(0);
    const sure = await createModelJudge(decoder, { minLogprob: weakest - 1e-6 }).judge(sample("c1", prompt, answer), task);
    expect(sure.approve).toBe(true);
    const strict = await createModelJudge(decoder, { minLogprob: weakest / 2 }).judge(sample("c2", prompt, answer), task);
    expect(strict.approve).toBe(false);
    expect(strict.reason).toContain("weakest token log-prob");
    expect(() => createModelJudge(decoder, { minLogprob: 0.5 })).toThrow(/log-probability/);
  });
});
