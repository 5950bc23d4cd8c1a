import { describe, expect, it } from "vitest";
import {
  buildG2pData,
  createTaskTokenizer,
  decodeArpabet,
  encodeArpabet,
  getTaskPack,
  G2P_BASE_MAX_LETTERS,
  phonemeErrors,
  splitOf,
} from "./index.js";

const pack = getTaskPack("g2p");

describe("g2p data", () => {
  it("cleans the raw dictionary: first pronunciation, letters only, stress stripped, acronyms and annotations out", () => {
    const data = buildG2pData({
      hello: "HH AH0 L OW1",
      "hello(2)": "HH EH0 L OW1",
      "o'neil": "OW0 N IY1 L",
      aaa: "T R IH2 P AH0 L EY1",
      ab: "EY1 B IY1",
      ngo: "EH1 N JH IY1 OW1 # abbrev",
      thought: "TH AO1 T",
    });
    expect([...data.entries.keys()].sort()).toEqual(["hello", "thought"]);
    expect(data.entries.get("hello")!.answer).toBe("H^L6");
    expect(decodeArpabet(data.entries.get("thought")!.answer)).toBe("TH AO T");
    expect(data.dropped).toEqual({ notAlphabetic: 1, length: 1, annotated: 1, implausible: 1, variants: 1 });
  });

  it("maps every ARPAbet phoneme to one distinct character and back", () => {
    const all = "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH";
    const encoded = encodeArpabet(all);
    expect(encoded).toHaveLength(39);
    expect(new Set(encoded).size).toBe(39);
    expect(decodeArpabet(encoded)).toBe(all);
    expect(() => encodeArpabet("HH XX")).toThrow(/not an ARPAbet phoneme/);
  });

  it("splits by content hash: held-out splits disjoint from anchor and pool, validation and anchor only in the base range", () => {
    const data = buildG2pData();
    expect(data.entries.size).toBeGreaterThan(100_000);
    const seen = new Map<string, string>();
    for (const [split, byLength] of data.bySplit) {
      for (const [letters, words] of byLength) {
        if (split === "anchor" || split === "validation") expect(letters).toBeLessThanOrEqual(G2P_BASE_MAX_LETTERS);
        if (split === "pool") expect(letters).toBeGreaterThan(G2P_BASE_MAX_LETTERS);
        words.forEach((w, i) => {
          expect(seen.has(w)).toBe(false);
          seen.set(w, split);
          if (i % 50 === 0) expect(splitOf(w)).toBe(split); // the rule itself, on a sample (hashing all is slow)
        });
      }
    }
    expect(seen.size).toBe(data.entries.size);
  });
});

describe("g2p pack", () => {
  it("is registered, tokenizes every word and answer one character (one phoneme) per token", () => {
    expect(pack.name).toBe("g2p");
    const tok = createTaskTokenizer(pack);
    for (const e of pack.createAnchorSource({ seed: 1, minDifficulty: 3, maxDifficulty: 6 }).take(200)) {
      const ids = tok.encode(pack.trainingText(e.prompt, e.answer));
      expect(ids).toHaveLength(e.prompt.length + e.answer.length + 1);
    }
  });

  it("anchor data stays in the base range and never holds a held-out or pool word; samplers are deterministic", () => {
    const heldOut = new Set<string>();
    for (let d = 3; d <= 16; d++) for (const e of pack.heldOut("test", d)) heldOut.add(e.prompt);
    for (let d = 3; d <= 6; d++) for (const e of pack.heldOut("validation", d)) heldOut.add(e.prompt);
    const anchors = pack.createAnchorSource({ seed: "a", minDifficulty: 3, maxDifficulty: 16 }).take(2000);
    for (const e of anchors) {
      expect(heldOut.has(e.prompt)).toBe(false);
      expect(e.difficulty).toBeLessThanOrEqual(6);
      expect(pack.verifier!.check(e.prompt, e.answer)).toBe(true);
    }
    const prompts = pack.createPromptSampler({ seed: 7, difficulty: 9 }).take(500);
    expect(new Set(prompts.map((p) => p.prompt)).size).toBe(500);
    for (const p of prompts) {
      expect(heldOut.has(p.prompt)).toBe(false);
      expect(pack.difficultyOf(p.prompt)).toBe(9);
    }
    expect(pack.createPromptSampler({ seed: 7, difficulty: 9 }).take(5)).toEqual(prompts.slice(0, 5));
    expect(pack.createPromptSampler({ seed: 8, difficulty: 9 }).take(5)).not.toEqual(prompts.slice(0, 5));
  });

  it("holds out validation only in the base range and test at every length, seed-independently", () => {
    expect(pack.heldOut("validation", 5).length).toBe(256);
    expect(pack.heldOut("validation", 7)).toHaveLength(0);
    expect(pack.heldOut("test", 8).length).toBe(256);
    expect(pack.heldOut("test", 16).length).toBeGreaterThan(5);
    expect(pack.heldOut("test", 8, 3)).toEqual(pack.heldOut("test", 8).slice(0, 3));
    expect(() => pack.heldOut("test", 17)).toThrow(/outside/);
    expect(() => pack.heldOut("test", 8, 10_000)).toThrow(/size/);
  });

  it("rules: known phonemes, a plausible count, no loops; equivalence ignores spaces and what follows eos", () => {
    expect(pack.checkFormat("hello=", "H^L6<eos>")).toEqual({ ok: true });
    expect(pack.checkFormat("hello=", "H^Lx")).toMatchObject({ ok: false, reason: expect.stringMatching(/ARPAbet/) });
    expect(pack.checkFormat("hello=", "H^L6L6L")).toMatchObject({ ok: false, reason: expect.stringMatching(/plausible|more than 6/) });
    expect(pack.checkFormat("hello=", "H")).toMatchObject({ ok: false, reason: expect.stringMatching(/plausible/) });
    expect(pack.checkFormat("hello=", "")).toMatchObject({ ok: false });
    expect(pack.checkFormat("hello=", "HLLLL")).toMatchObject({ ok: false, reason: expect.stringMatching(/repeated/) });
    expect(pack.checkFormat("HELLO=", "H^L6")).toMatchObject({ ok: false, reason: expect.stringMatching(/malformed/) });
    expect(pack.equivalent("H ^ L 6<eos>ZZ", "H^L6")).toBe(true);
    expect(pack.equivalent("H^L", "H^L6")).toBe(false);
  });

  it("measures phoneme errors as edit distance", () => {
    expect(phonemeErrors("H^L6", "H^L6")).toBe(0);
    expect(phonemeErrors("HEL6", "H^L6")).toBe(1);
    expect(phonemeErrors("", "H^L6")).toBe(4);
    expect(phonemeErrors("H^L6Z", "H^L6")).toBe(1);
  });
});
