import { createCharTokenizer, type CharTokenizer } from "../../engine/tokenizer/index.js";

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

/** Builds the engine's character tokenizer for a task, so every service encodes a task the same way. */
export function createTaskTokenizer(task: { readonly tokenizer: CharTokenizerSpec }): CharTokenizer {
  const { alphabet, special } = task.tokenizer;
  return createCharTokenizer({ alphabet, pad: special.pad, bos: special.bos, eos: special.eos });
}
