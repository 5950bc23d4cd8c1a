import { AutodidactError, Code } from "../errors/index.js";

/**
 * What a task declares about its vocabulary: a character alphabet plus the special tokens. The
 * engine builds its tokenizer from this, so a task pack never depends on the engine.
 */
export interface CharTokenizerSpec {
  readonly kind: "char";
  /** Single characters, in id order after the special tokens. */
  readonly alphabet: readonly string[];
  /** Textual forms of the special tokens; ids 0, 1, 2 in this order. */
  readonly special: { readonly pad: string; readonly bos: string; readonly eos: string };
}

/**
 * The minimal tokenizer shape task code needs (encode a prompt, decode a completion). It is kept
 * structurally compatible with the engine's `Tokenizer` so the engine can use it directly.
 */
export interface CharTokenizer {
  readonly spec: CharTokenizerSpec;
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Encodes text character by character; special-token strings in the text map to their ids. */
  encode(text: string): number[];
  /** Decodes ids; special tokens are dropped unless `keepSpecial` is set. */
  decode(ids: readonly number[], options?: { keepSpecial?: boolean }): string;
}

/** Builds a {@link CharTokenizer} from a spec, rejecting duplicate or multi-character symbols. */
export function createCharTokenizer(spec: CharTokenizerSpec): CharTokenizer {
  const specials = [spec.special.pad, spec.special.bos, spec.special.eos];
  const symbols = [...specials, ...spec.alphabet];
  const ids = new Map<string, number>();
  symbols.forEach((s, i) => {
    if (s.length === 0) throw new AutodidactError("tokenizer symbols must be non-empty", Code.InvalidArgument);
    if (i >= specials.length && [...s].length !== 1) {
      throw new AutodidactError(`alphabet entry ${JSON.stringify(s)} is not a single character`, Code.InvalidArgument);
    }
    if (ids.has(s)) throw new AutodidactError(`duplicate tokenizer symbol ${JSON.stringify(s)}`, Code.InvalidArgument);
    ids.set(s, i);
  });
  const specialSet = new Set(specials);
  return {
    spec,
    vocabSize: symbols.length,
    padId: 0,
    bosId: 1,
    eosId: 2,
    encode(text: string): number[] {
      const out: number[] = [];
      let i = 0;
      outer: while (i < text.length) {
        for (const sp of specials) {
          if (text.startsWith(sp, i)) {
            out.push(ids.get(sp) as number);
            i += sp.length;
            continue outer;
          }
        }
        const ch = String.fromCodePoint(text.codePointAt(i) as number);
        const id = ids.get(ch);
        if (id === undefined) {
          throw new AutodidactError(`character ${JSON.stringify(ch)} at ${i} is not in the task alphabet`, Code.InvalidArgument, {
            details: { text: text.slice(0, 200) },
          });
        }
        out.push(id);
        i += ch.length;
      }
      return out;
    },
    decode(ids2: readonly number[], options = {}): string {
      let text = "";
      for (const id of ids2) {
        const sym = symbols[id];
        if (sym === undefined) throw new AutodidactError(`token id ${id} is outside the vocabulary (size ${symbols.length})`, Code.InvalidArgument);
        if (specialSet.has(sym) && !options.keepSpecial) continue;
        text += sym;
      }
      return text;
    },
  };
}
