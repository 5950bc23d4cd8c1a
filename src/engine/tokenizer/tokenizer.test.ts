import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { charTokenizerFromJson, createCharTokenizer, createHfTokenizer, loadTokenizer, tokenizerFromJson } from "./index.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tok-"));
  dirs.push(d);
  return d;
}

describe("character tokenizer", () => {
  const tok = createCharTokenizer({ alphabet: "0123456789+=" });

  it("encodes, decodes and knows its special ids", () => {
    expect(tok.vocabSize).toBe(15);
    expect([tok.padId, tok.bosId, tok.eosId]).toEqual([0, 1, 2]);
    const ids = tok.encode("12+9=", { addBos: true, addEos: true });
    expect(ids).toEqual([1, 4, 5, 13, 12, 14, 2]);
    expect(tok.decode(ids)).toBe("<bos>12+9=<eos>");
    expect(tok.decode(ids, { skipSpecial: true })).toBe("12+9=");
    expect(tok.encode("3<eos>")).toEqual([6, 2]);
  });

  it("rejects unknown characters unless it has an unk token, and bad ids", () => {
    try {
      tok.encode("1x2");
      expect.unreachable();
    } catch (e) {
      expect((e as AutodidactError).code).toBe(Code.InvalidArgument);
      expect((e as Error).message).toContain('"x"');
    }
    const withUnk = createCharTokenizer({ alphabet: "ab", unk: "<unk>" });
    expect(withUnk.encode("azb")).toEqual([4, 3, 5]);
    expect(() => tok.decode([99])).toThrow(/outside the vocabulary/);
    expect(() => createCharTokenizer({ alphabet: "aa" })).toThrow(/twice/);
  });

  it("writes a tokenizer.json the Hugging Face library reads identically, and reads it back natively", () => {
    const json = tok.toJSON();
    const hf = createHfTokenizer(json);
    for (const text of ["", "0", "98+76=4711", "5<eos>"]) {
      expect(hf.encode(text)).toEqual(tok.encode(text));
      expect(hf.decode(tok.encode(text))).toBe(text);
    }
    expect(hf.vocabSize).toBe(tok.vocabSize);
    expect([hf.padId, hf.bosId, hf.eosId]).toEqual([tok.padId, tok.bosId, tok.eosId]);
    const back = charTokenizerFromJson(JSON.parse(JSON.stringify(json)) as Record<string, unknown>);
    expect(back?.alphabet).toEqual(tok.alphabet);
    expect(back?.encode("1+1=2", { addEos: true })).toEqual(tok.encode("1+1=2", { addEos: true }));
  });
});

/** A small BPE tokenizer.json, written by hand: whitespace pre-tokenizer, merges "l o" and "lo w". */
function bpeJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { "<s>": 0, "</s>": 1, "<pad>": 2, l: 3, o: 4, w: 5, e: 6, r: 7, lo: 8, low: 9 };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: ["<s>", "</s>", "<pad>"].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: ["l o", "lo w"] },
  };
}

describe("Hugging Face tokenizer.json", () => {
  it("applies BPE merges and finds special tokens by name", () => {
    const tok = tokenizerFromJson(bpeJson());
    expect(tok.encode("lower")).toEqual([9, 6, 7]);
    expect(tok.encode("low", { addBos: true, addEos: true })).toEqual([0, 9, 1]);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2]);
    expect(tok.vocabSize).toBe(10);
    expect(tok.decode([0, 9, 1], { skipSpecial: true })).not.toContain("<s>");
    expect(charTokenizerFromJson(bpeJson())).toBeNull();
  });

  it("loads from a folder, honouring tokenizer_config.json, with clear errors", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(bpeJson()));
    await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "</s>", eos_token: { content: "<s>" } }));
    const tok = await loadTokenizer(dir);
    expect([tok.bosId, tok.eosId]).toEqual([1, 0]);

    const charDir = await tempDir();
    const chars = createCharTokenizer({ alphabet: "ab" });
    await writeFile(join(charDir, "tokenizer.json"), JSON.stringify(chars.toJSON()));
    const loaded = await loadTokenizer(charDir);
    expect((loaded as { kind?: string }).kind).toBe("char");

    const missing = await loadTokenizer(join(dir, "nope")).catch((e: unknown) => e);
    expect((missing as AutodidactError).code).toBe(Code.NotFound);
    const badDir = await tempDir();
    await writeFile(join(badDir, "tokenizer.json"), "{ not json");
    const bad = await loadTokenizer(badDir).catch((e: unknown) => e);
    expect((bad as AutodidactError).code).toBe(Code.DataLoss);
    expect((bad as Error).message).toContain("tokenizer.json");
  });
});
