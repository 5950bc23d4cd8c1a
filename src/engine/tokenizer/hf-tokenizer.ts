import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { charTokenizerFromJson } from "./char-tokenizer.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.js";

/** Special-token overrides when neither tokenizer_config.json nor token names reveal them. */
export interface SpecialTokenNames {
  readonly bos?: string;
  readonly eos?: string;
  readonly pad?: string;
}

type TokenField = string | { content?: string } | null | undefined;

function tokenName(v: TokenField): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof v.content === "string") return v.content;
  return undefined;
}

const GUESSES = {
  bos: ["<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]", "<|endoftext|>"],
  eos: ["</s>", "<eos>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "[SEP]"],
  pad: ["<pad>", "[PAD]", "<|pad|>"],
} as const;

/**
 * Wraps a Hugging Face `tokenizer.json` (any model the `@huggingface/tokenizers` library handles:
 * BPE, WordPiece, Unigram) into the engine's {@link Tokenizer}, so real models' tokenizers work
 * everywhere ours do. `config` is the optional `tokenizer_config.json` (bos/eos/pad names).
 */
export function createHfTokenizer(json: Record<string, unknown>, config: Record<string, unknown> = {}, specials: SpecialTokenNames = {}): Tokenizer {
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json, config);
  } catch (cause) {
    throw new AutodidactError(`invalid tokenizer.json: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
  const vocab = hf.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const added = hf.get_added_tokens_decoder();
  const specialIds = [...added.entries()].filter(([, t]) => (t as { special?: boolean }).special !== false).map(([id]) => id);
  const find = (role: "bos" | "eos" | "pad"): number | null => {
    const explicit = specials[role] ?? tokenName(config[`${role}_token`] as TokenField);
    if (explicit !== undefined) {
      const id = hf.token_to_id(explicit);
      if (id === undefined) throw new AutodidactError(`tokenizer: ${role} token "${explicit}" is not in the vocabulary`, Code.InvalidArgument);
      return id;
    }
    for (const g of GUESSES[role]) {
      const id = hf.token_to_id(g);
      if (id !== undefined) return id;
    }
    return null;
  };
  const bosId = find("bos");
  const eosId = find("eos");
  const padId = find("pad");
  const all = new Set(specialIds);
  for (const id of [bosId, eosId, padId]) if (id !== null) all.add(id);
  return {
    vocabSize: maxId + 1,
    bosId,
    eosId,
    padId,
    specialIds: [...all].sort((a, b) => a - b),
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const ids = hf.encode(text, { add_special_tokens: false }).ids;
      // No bos token: the sequence starts with the text (see EncodeOptions.addBos).
      if (opts.addBos && bosId !== null) ids.unshift(bosId);
      if (opts.addEos) {
        if (eosId === null) throw new AutodidactError("tokenizer has no eos token", Code.FailedPrecondition);
        ids.push(eosId);
      }
      return ids;
    },
    decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
      if (ids.length === 0) return "";
      return hf.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecial ?? false });
    },
    tokenToId: (t) => hf.token_to_id(t),
    idToToken: (id) => hf.id_to_token(id),
    toJSON: () => json,
  };
}

/**
 * Builds the right tokenizer for a `tokenizer.json` document: our native character tokenizer
 * when the file is one we wrote, the Hugging Face implementation otherwise.
 */
export function tokenizerFromJson(json: Record<string, unknown>, config: Record<string, unknown> = {}, specials: SpecialTokenNames = {}): Tokenizer {
  if (!json || typeof json !== "object" || !("model" in json)) {
    throw new AutodidactError("tokenizer.json has no model section", Code.InvalidArgument);
  }
  return charTokenizerFromJson(json) ?? createHfTokenizer(json, config, specials);
}

/** Loads `tokenizer.json` (+ `tokenizer_config.json` if present) from a model folder. */
export async function loadTokenizer(dir: string, specials: SpecialTokenNames = {}): Promise<Tokenizer> {
  const path = join(dir, "tokenizer.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new AutodidactError(`cannot read ${path}`, Code.NotFound, { cause });
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new AutodidactError(`${path} is not valid JSON`, Code.DataLoss, { cause });
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  } catch {
    // optional file
  }
  try {
    return tokenizerFromJson(json, config, specials);
  } catch (e) {
    const err = AutodidactError.from(e, Code.InvalidArgument);
    throw new AutodidactError(`${path}: ${err.rawMessage}`, err.code, { cause: e });
  }
}
