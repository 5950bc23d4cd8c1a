/**
 * What every model needs from a tokenizer, whatever its kind (our character tokenizer for the
 * built-in tasks, or a Hugging Face `tokenizer.json` for real models), so generation, training
 * and critics never care which one they hold.
 */
export interface Tokenizer {
  /** Number of ids the model's embedding must cover (max id + 1). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /** Ids of all special tokens (skipped by `decode(..., { skipSpecial: true })`). */
  readonly specialIds: readonly number[];
  /** Text → ids. Special-token strings in the text map to their ids. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Ids → text. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** A Hugging Face `tokenizer.json` document equivalent to this tokenizer. */
  toJSON(): Record<string, unknown>;
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Prepend the beginning-of-sequence token when the tokenizer has one. Many tokenizers (Qwen, most
   * BPE vocabularies of our own) have none: their models see the prompt alone, in training and in
   * serving alike, so asking for bos never fails.
   */
  readonly addBos?: boolean;
  /** Append the end-of-sequence token; FailedPrecondition when the tokenizer has none (a model could not stop). */
  readonly addEos?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (pad/bos/eos...) from the text. Default false. */
  readonly skipSpecial?: boolean;
}
