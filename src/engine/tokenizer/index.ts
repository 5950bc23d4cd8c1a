export type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.js";
export type { CharTokenizer, CharTokenizerOptions } from "./char-tokenizer.js";
export { charTokenizerFromJson, createCharTokenizer } from "./char-tokenizer.js";
export type { SpecialTokenNames } from "./hf-tokenizer.js";
export { createHfTokenizer, loadTokenizer, tokenizerFromJson } from "./hf-tokenizer.js";
