import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import {
  createAdditionTask,
  createReverseTask,
  createRng,
  createTaskTokenizer,
  defineTaskPack,
  formatAdditionPrompt,
  getTaskPack,
  HELD_OUT_SPLITS,
  listTaskPacks,
  parseAdditionPrompt,
  registerTaskPack,
  SMALL_SPACE_TEST_SHARE,
  solveAddition,
  type HeldOutSplit,
} from "./index.js";

const rev = (s: string): string => [...s].reverse().join("");
/** Reads a reversed decimal string as a bigint, independently of the task's own arithmetic. */
const fromReversed = (s: string): bigint => BigInt(rev(s));

describe("registry", () => {
  it("returns built-in packs by name and the same instance twice", () => {
    expect(getTaskPack("addition").name).toBe("addition");
    expect(getTaskPack("reverse").name).toBe("reverse");
    expect(getTaskPack("addition")).toBe(getTaskPack("addition"));
    expect(listTaskPacks()).toEqual(expect.arrayContaining(["addition", "reverse"]));
  });

  it("registers a deployment's own task built with defineTaskPack, once", () => {
    const upper = defineTaskPack({
      name: "upper",
      description: "uppercase a letter",
      tokenizer: { kind: "char", alphabet: [..."abcABC="], special: { pad: "<pad>", bos: "<bos>", eos: "<eos>" } },
      difficulty: { min: 1, max: 1 },
      sliceNames: [],
      heldOutSize: 10,
      defaultMaxShortfall: 1,
      problemSpace: () => 3,
      sample: (rng) => `${rng.pick(["a", "b", "c"])}=`,
      solve: (prompt) => prompt.slice(0, 1).toUpperCase(),
      checkFormat: (_prompt, answer) => (/^[ABC]$/.test(answer) ? { ok: true } : { ok: false, reason: "one capital" }),
      rareSlices: () => [],
      difficultyOf: () => 1,
      maxPromptLength: () => 2,
      maxAnswerLength: () => 1,
      exposeVerifier: false,
    });
    registerTaskPack(upper);
    expect(getTaskPack("upper")).toBe(upper);
    expect(listTaskPacks()).toContain("upper");
    expect(upper.verifier).toBeUndefined();
    // Half of a 3-problem space, rounded down, is held out: the one problem goes to test.
    expect(upper.heldOut("test", 1)).toHaveLength(1);
    expect(upper.heldOut("validation", 1)).toHaveLength(0);
    expect(() => registerTaskPack(upper)).toThrow(/already registered/);
    expect(() => registerTaskPack({ ...upper, name: "addition" })).toThrow(/already registered/);
  });

  it("rejects an unknown task with InvalidArgument naming the known ones", () => {
    let caught: unknown;
    try {
      getTaskPack("multiplication");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AutodidactError);
    expect((caught as AutodidactError).code).toBe(Code.InvalidArgument);
    expect((caught as AutodidactError).message).toMatch(/unknown task "multiplication", known: addition, addition-padded, g2p, reverse, upper$/);
  });
});

describe("task tokenizer", () => {
  const tok = createTaskTokenizer(createAdditionTask());

  it("puts specials first and round-trips task text through the engine tokenizer", () => {
    expect([tok.padId, tok.bosId, tok.eosId]).toEqual([0, 1, 2]);
    expect(tok.vocabSize).toBe(3 + 12);
    const ids = tok.encode("<bos>21+93=15<eos>");
    expect(ids[0]).toBe(tok.bosId);
    expect(ids.at(-1)).toBe(tok.eosId);
    expect(ids).toHaveLength(1 + 8 + 1);
    expect(tok.decode(ids, { skipSpecial: true })).toBe("21+93=15");
    expect(tok.decode(ids)).toBe("<bos>21+93=15<eos>");
  });

  it("covers every character the task can produce", () => {
    for (const task of [createAdditionTask(), createReverseTask()]) {
      const t = createTaskTokenizer(task);
      for (const e of task.createAnchorSource({ seed: 1, minDifficulty: 1, maxDifficulty: 12 }).take(50)) {
        expect(t.decode(t.encode(`${e.prompt}${e.answer}${task.tokenizer.special.eos}`), { skipSpecial: true })).toBe(e.prompt + e.answer);
      }
    }
    expect(() => tok.encode("12-3")).toThrow(AutodidactError);
  });
});

describe("addition task", () => {
  const task = createAdditionTask();

  it("uses the documented reversed format", () => {
    expect(formatAdditionPrompt(12n, 39n)).toBe("21+93=");
    expect(solveAddition("21+93=")).toBe("15");
    expect(solveAddition("99+1=")).toBe("001"); // 99 + 1 = 100
    expect(solveAddition("0+0=")).toBe("0");
    expect(() => parseAdditionPrompt("12+30=")).toThrow(/leading zero/);
    expect(() => parseAdditionPrompt("12+3")).toThrow(AutodidactError);
  });

  it("solves any addition exactly like bigint arithmetic", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 60n }), fc.bigInt({ min: 0n, max: 10n ** 60n }), (a, b) => {
        const prompt = formatAdditionPrompt(a, b);
        expect(fromReversed(solveAddition(prompt))).toBe(a + b);
        expect(task.verifier?.check(prompt, `${rev((a + b).toString())}<eos>`)).toBe(true);
        expect(task.verifier?.check(prompt, rev((a + b + 1n).toString()))).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("samples prompts of exactly the requested difficulty, deterministically per seed", () => {
    for (const n of [1, 2, 7, 20]) {
      const first = task.createPromptSampler({ seed: 42, difficulty: n }).take(50);
      const again = task.createPromptSampler({ seed: 42, difficulty: n }).take(50);
      const other = task.createPromptSampler({ seed: 43, difficulty: n }).take(50);
      expect(again).toEqual(first);
      expect(other).not.toEqual(first);
      for (const p of first) {
        expect(p.difficulty).toBe(n);
        expect(parseAdditionPrompt(p.prompt).n).toBe(n); // also checks canonical form
      }
    }
    // Operands of different lengths occur, on both sides.
    const many = task.createPromptSampler({ seed: 1, difficulty: 6 }).take(200).map((p) => parseAdditionPrompt(p.prompt));
    expect(many.some((p) => p.a.length < p.b.length)).toBe(true);
    expect(many.some((p) => p.a.length > p.b.length)).toBe(true);
    expect(many.some((p) => p.a.length === p.b.length)).toBe(true);
  });

  it("holds out deterministic, duplicate-free validation and test splits per difficulty", () => {
    const fresh = createAdditionTask();
    for (const n of [3, 10]) {
      for (const split of HELD_OUT_SPLITS) {
        const set = task.heldOut(split, n);
        expect(set).toHaveLength(task.heldOutSize);
        expect(fresh.heldOut(split, n)).toEqual(set);
        expect(new Set(set.map((e) => e.prompt)).size).toBe(set.length);
        for (const e of set) {
          expect(e.difficulty).toBe(n);
          expect(fromReversed(e.answer)).toBe(fromReversed(parseAdditionPrompt(e.prompt).a) + fromReversed(parseAdditionPrompt(e.prompt).b));
        }
      }
      const test = new Set(task.heldOut("test", n).map((e) => e.prompt));
      for (const e of task.heldOut("validation", n)) expect(test.has(e.prompt)).toBe(false);
    }
    expect(task.heldOut("test", 3, 10)).toEqual(task.heldOut("test", 3).slice(0, 10));
    expect(task.heldOut("validation", 3, 10)).toEqual(task.heldOut("validation", 3).slice(0, 10));
    expect(() => task.heldOut("test", 3, task.heldOutSize + 1)).toThrow(AutodidactError);
    expect(() => task.heldOut("validation", 0)).toThrow(/outside 1..128/);
    expect(() => task.heldOut("train" as HeldOutSplit, 3)).toThrow(/unknown held-out split/);
  });

  it("keeps anchor data, generator prompts and both splits disjoint even in a tiny space", () => {
    // 1-digit addition has only 100 problems: half is held out (30 test, 20 validation), the rest must still be reachable.
    const test = new Set(task.heldOut("test", 1).map((e) => e.prompt));
    const validation = new Set(task.heldOut("validation", 1).map((e) => e.prompt));
    expect(test.size).toBe(30);
    expect(validation.size).toBe(20);
    expect(Math.round(50 * SMALL_SPACE_TEST_SHARE)).toBe(30);
    for (const p of validation) expect(test.has(p)).toBe(false);
    const anchors = task.createAnchorSource({ seed: 7, minDifficulty: 1, maxDifficulty: 1 }).take(2000);
    const prompts = task.createPromptSampler({ seed: 7, difficulty: 1 }).take(2000);
    for (const p of [...anchors, ...prompts]) {
      expect(test.has(p.prompt)).toBe(false);
      expect(validation.has(p.prompt)).toBe(false);
    }
    const seen = new Set(anchors.map((a) => a.prompt));
    expect(seen.size).toBe(50);
    // Larger difficulties: the same check over the whole range, both splits.
    const source = task.createAnchorSource({ seed: "s", minDifficulty: 2, maxDifficulty: 4 });
    const held = new Map(
      [2, 3, 4].map((n) => [n, new Set([...task.heldOut("test", n), ...task.heldOut("validation", n)].map((e) => e.prompt))]),
    );
    const drawn = source.take(3000);
    for (const a of drawn) {
      expect(held.get(a.difficulty)?.has(a.prompt)).toBe(false);
      expect(a.answer).toBe(solveAddition(a.prompt));
    }
    expect(new Set(drawn.map((a) => a.difficulty))).toEqual(new Set([2, 3, 4]));
    for (const p of task.createPromptSampler({ seed: 3, difficulty: 2 }).take(3000)) expect(held.get(2)?.has(p.prompt)).toBe(false);
  });

  it("gives every problem a stable id and reads difficulty back from the prompt", () => {
    const [p] = task.createPromptSampler({ seed: 5, difficulty: 9 }).take(1);
    expect(p?.id).toBe(task.promptId(p?.prompt ?? ""));
    expect(p?.id).toMatch(/^addition-[0-9a-f]{16}$/);
    expect(createAdditionTask().promptId("21+93=")).toBe(task.promptId("21+93="));
    expect(task.promptId("21+93=")).not.toBe(task.promptId("93+21="));
    expect(getTaskPack("reverse").promptId("21+93=")).not.toBe(task.promptId("21+93="));
    expect(task.heldOut("test", 4)[0]?.id).toBe(task.promptId(task.heldOut("test", 4)[0]?.prompt ?? ""));
    expect(task.difficultyOf("21+93=")).toBe(2);
    expect(task.difficultyOf("1+00001=")).toBe(5);
    expect(() => task.difficultyOf("x")).toThrow(AutodidactError);
    expect(getTaskPack("reverse").difficultyOf("abcd=")).toBe(4);
  });

  it("bounds prompt and answer lengths per difficulty and formats training text", () => {
    for (const t of [task, getTaskPack("reverse")]) {
      for (const n of [1, 3, 12]) {
        const examples = t.createAnchorSource({ seed: n, minDifficulty: n, maxDifficulty: n }).take(300);
        expect(Math.max(...examples.map((e) => e.prompt.length))).toBeLessThanOrEqual(t.maxPromptLength(n));
        expect(Math.max(...examples.map((e) => e.answer.length))).toBeLessThanOrEqual(t.maxAnswerLength(n));
      }
    }
    // The bounds are reached: both operands n digits with a final carry.
    expect(formatAdditionPrompt(999n, 999n)).toHaveLength(task.maxPromptLength(3));
    expect(solveAddition(formatAdditionPrompt(999n, 999n))).toHaveLength(task.maxAnswerLength(3));
    expect(task.trainingText("21+93=", " 15<eos>")).toBe("21+93=15<eos>");
  });

  it("anchor sources are reproducible per seed", () => {
    const a = task.createAnchorSource({ seed: 3, minDifficulty: 1, maxDifficulty: 16 }).take(40);
    const b = task.createAnchorSource({ seed: 3, minDifficulty: 1, maxDifficulty: 16 }).take(40);
    const c = task.createAnchorSource({ seed: 4, minDifficulty: 1, maxDifficulty: 16 }).take(40);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(() => task.createAnchorSource({ seed: 3, minDifficulty: 5, maxDifficulty: 2 })).toThrow(AutodidactError);
  });

  it("normalizes and compares answers by exact match", () => {
    expect(task.normalize(" 15 <eos><pad><pad>")).toBe("15");
    expect(task.normalize("15<eos>99")).toBe("15");
    expect(task.equivalent("15<eos>", "1 5")).toBe(true);
    expect(task.equivalent("15", "51")).toBe(false);
  });

  it("applies the format and single-sample length rules", () => {
    expect(task.checkFormat("21+93=", "15<eos>")).toEqual({ ok: true });
    expect(task.checkFormat("99+1=", "001")).toEqual({ ok: true });
    // Valid shape but wrong sum: format rules are not a verifier.
    expect(task.checkFormat("21+93=", "16")).toEqual({ ok: true });
    const bad = (prompt: string, answer: string): string => {
      const r = task.checkFormat(prompt, answer);
      expect(r.ok).toBe(false);
      return r.ok ? "" : r.reason;
    };
    expect(bad("21+93=", "1")).toMatch(/1 digits; 2-digit operands give 2 or 3/);
    expect(bad("21+93=", "1523")).toMatch(/4 digits/);
    expect(bad("21+93=", "1a")).toMatch(/non-digit/);
    expect(bad("21+93=", "<eos>")).toMatch(/empty/);
    expect(bad("21+93=", "150")).toMatch(/leading zero/);
    expect(bad("21-93=", "15")).toMatch(/malformed prompt/);
  });

  it("filters ensemble answers shorter than the longest", () => {
    expect(task.lengthFilter(["001", "00", "0", "001<eos>"])).toEqual([true, true, false, true]);
    expect(task.lengthFilter(["001", "00", "0"], 1)).toEqual([true, false, false]);
    expect(task.lengthFilter([])).toEqual([]);
    expect(() => task.lengthFilter(["1"], 0)).toThrow(AutodidactError);
  });

  it("tags rare slices", () => {
    expect(task.rareSlices("99+1=")).toEqual(expect.arrayContaining(["long_carry_chain", "final_carry"])); // 99+1=100
    expect(task.rareSlices("21+93=")).toEqual([]); // 12+39=51: one carry, no final carry
    expect(task.rareSlices("0+5=")).toEqual(["zero_operand"]);
    expect(task.rareSlices("0001+2=")).toEqual(["many_zeros"]); // 1000+2
    // 5555 + 5555 = 11110: every position carries
    expect(task.rareSlices(formatAdditionPrompt(5555n, 5555n))).toEqual(["long_carry_chain", "final_carry"]);
    for (const tag of task.rareSlices("99+1=")) expect(task.sliceNames).toContain(tag);
    // Slices are rare in the sampled distribution (they are tails, not the bulk).
    const examples = task.createAnchorSource({ seed: 9, minDifficulty: 8, maxDifficulty: 8 }).take(1000);
    const share = (tag: string): number => examples.filter((e) => e.slices.includes(tag)).length / examples.length;
    for (const tag of task.sliceNames) expect(share(tag)).toBeLessThan(0.5);
    expect(share("final_carry")).toBeGreaterThan(0);
  });
});

describe("reverse task (the interface is generic)", () => {
  const task = createReverseTask();

  it("samples, solves, checks and holds out like any task", () => {
    const p = task.createPromptSampler({ seed: 1, difficulty: 5 }).next();
    expect(p.prompt).toMatch(/^[a-z]{5}=$/);
    expect(task.verifier?.solve("abc=")).toBe("cba");
    expect(task.verifier?.check("abc=", "cba<eos>")).toBe(true);
    expect(task.verifier?.check("abc", "cba")).toBe(false);
    expect(task.checkFormat("abc=", "cb")).toMatchObject({ ok: false });
    expect(task.checkFormat("abc=", "zzz")).toEqual({ ok: true });
    expect(task.rareSlices("abba=")).toEqual(["palindrome"]);
    expect(task.rareSlices("xaaay=")).toEqual(["letter_run"]);
    // 26 one-letter problems: 13 held out, 8 test and 5 validation.
    expect(task.heldOut("test", 1)).toHaveLength(8);
    expect(task.heldOut("validation", 1)).toHaveLength(5);
    const held = new Set([...task.heldOut("test", 1), ...task.heldOut("validation", 1)].map((e) => e.prompt));
    for (const a of task.createAnchorSource({ seed: 0, minDifficulty: 1, maxDifficulty: 1 }).take(300)) {
      expect(held.has(a.prompt)).toBe(false);
      expect(a.answer).toBe(a.prompt.slice(0, -1));
    }
    expect(task.tokenizer.kind === "char" && task.tokenizer.alphabet).not.toContain("+");
  });
});

describe("rng", () => {
  it("is reproducible and separates streams", () => {
    const draw = (...parts: Array<string | number>): number[] => {
      const r = createRng(...parts);
      return Array.from({ length: 5 }, () => r.int(0, 1_000_000));
    };
    expect(draw("a", 1)).toEqual(draw("a", 1));
    expect(draw("a", 1)).not.toEqual(draw("a", 2));
    expect(draw("ab", "c")).not.toEqual(draw("a", "bc"));
    const r = createRng("range");
    for (let i = 0; i < 1000; i++) {
      const v = r.int(3, 5);
      expect(v >= 3 && v <= 5).toBe(true);
    }
  });
});
