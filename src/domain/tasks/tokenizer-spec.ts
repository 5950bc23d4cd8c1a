import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createCharTokenizer, createHfTokenizer, type CharTokenizer, type Tokenizer } from "../../engine/tokenizer/index.js";

/**
 * What a task declares about its vocabulary: a character alphabet plus the special tokens. It is
 * plain data, so a task pack can be listed, hashed and sent over the wire; the engine's tokenizer
 * is built from it with {@link createTaskTokenizer}.
 */
export interface CharTokenizerSpec {
  readonly kind: "char";
  /** Single characters, in id order after the special tokens. */
  readonly alphabet: readonly string[];
  /** Textual forms of the special tokens; ids 0, 1, 2 in this order. */
  readonly special: { readonly pad: string; readonly bos: string; readonly eos: string };
}

/**
 * A subword vocabulary: a Hugging Face `tokenizer.json` document (BPE, WordPiece, Unigram through
 * `@huggingface/tokenizers`), with the textual forms of its special tokens. `bos` is "" when the
 * tokenizer has none (models then see the prompt alone); `eos` is required, or a model could not stop.
 */
export interface HfTokenizerSpec {
  readonly kind: "hf";
  readonly json: Readonly<Record<string, unknown>>;
  readonly special: { readonly pad: string; readonly bos: string; readonly eos: string };
}

/** A task's tokenizer: characters (the built-in tasks) or a subword `tokenizer.json`. */
export type TaskTokenizerSpec = CharTokenizerSpec | HfTokenizerSpec;

/** Builds the engine's tokenizer for a task, so every service encodes a task the same way (and models are sized from it). */
export function createTaskTokenizer(task: { readonly tokenizer: CharTokenizerSpec }): CharTokenizer;
export function createTaskTokenizer(task: { readonly tokenizer: TaskTokenizerSpec }): Tokenizer;
export function createTaskTokenizer(task: { readonly tokenizer: TaskTokenizerSpec }): Tokenizer {
  const spec = task.tokenizer;
  if (spec.kind === "hf") {
    const specials = { eos: spec.special.eos, ...(spec.special.pad !== "" ? { pad: spec.special.pad } : {}), ...(spec.special.bos !== "" ? { bos: spec.special.bos } : {}) };
    return createHfTokenizer({ ...spec.json }, {}, specials);
  }
  const { alphabet, special } = spec;
  return createCharTokenizer({ alphabet, pad: special.pad, bos: special.bos, eos: special.eos });
}

/**
 * The spec of a `tokenizer.json` document: its special tokens found by name (explicit `special` wins),
 * InvalidArgument when it has no end-of-sequence token.
 */
export function hfTokenizerSpec(json: Record<string, unknown>, special: { readonly pad?: string; readonly bos?: string; readonly eos?: string } = {}): HfTokenizerSpec {
  const tok = createHfTokenizer(json, {}, special);
  const name = (id: number | null): string => (id === null ? "" : (tok.idToToken(id) ?? ""));
  const eos = name(tok.eosId);
  if (eos === "") throw new AutodidactError('tokenizer.json has no end-of-sequence token (name it with "eos")', Code.InvalidArgument);
  return { kind: "hf", json, special: { pad: name(tok.padId), bos: name(tok.bosId), eos } };
}
