import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.js";

/** Options of {@link createCharTokenizer}. */
export interface CharTokenizerOptions {
  /** The characters, in id order after the special tokens (a string or a list of single characters). */
  readonly alphabet: string | readonly string[];
  /** Special token strings; `null` leaves one out. Defaults: `<pad>`, `<bos>`, `<eos>`. */
  readonly pad?: string | null;
  readonly bos?: string | null;
  readonly eos?: string | null;
  /** Token for characters outside the alphabet; without it, unknown characters are an error. */
  readonly unk?: string | null;
}

/**
 * One id per character, special tokens first (pad, bos, eos, unk in that order). Exists because
 * the built-in tasks (digits and a few symbols) want a tiny exact vocabulary with fast, allocation-
 * light encoding, and it can still be written as a standard `tokenizer.json`.
 */
export interface CharTokenizer extends Tokenizer {
  readonly alphabet: readonly string[];
  readonly kind: "char";
}

/** Creates a character tokenizer; duplicate or multi-character alphabet entries are rejected. */
export function createCharTokenizer(options: CharTokenizerOptions): CharTokenizer {
  const alphabet = typeof options.alphabet === "string" ? Array.from(options.alphabet) : [...options.alphabet];
  const specials: { role: "pad" | "bos" | "eos" | "unk"; token: string }[] = [];
  const pad = options.pad === undefined ? "<pad>" : options.pad;
  const bos = options.bos === undefined ? "<bos>" : options.bos;
  const eos = options.eos === undefined ? "<eos>" : options.eos;
  const unk = options.unk ?? null;
  if (pad !== null) specials.push({ role: "pad", token: pad });
  if (bos !== null) specials.push({ role: "bos", token: bos });
  if (eos !== null) specials.push({ role: "eos", token: eos });
  if (unk !== null) specials.push({ role: "unk", token: unk });
  const tokens = [...specials.map((s) => s.token), ...alphabet];
  const toId = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (toId.has(t)) throw new AutodidactError(`char tokenizer: token "${t}" appears twice`, Code.InvalidArgument);
    toId.set(t, i);
  });
  for (const ch of alphabet) {
    if (Array.from(ch).length !== 1) throw new AutodidactError(`char tokenizer: alphabet entry "${ch}" is not one character`, Code.InvalidArgument);
  }
  const idOf = (role: string): number | null => {
    const s = specials.find((x) => x.role === role);
    return s ? (toId.get(s.token) as number) : null;
  };
  const unkId = idOf("unk");
  const specialIds = specials.map((s) => toId.get(s.token) as number);
  const specialSet = new Set(specialIds);
  const specialTokens = specials.map((s) => s.token).filter((t) => Array.from(t).length > 1);
  const specialStarts = new Set(specialTokens.map((t) => t[0] as string));
  // Fast path: ids of BMP characters in a flat table.
  const fast = new Int32Array(65536).fill(-1);
  for (const ch of alphabet) if (ch.length === 1) fast[ch.charCodeAt(0)] = toId.get(ch) as number;

  const self: CharTokenizer = {
    kind: "char",
    alphabet,
    vocabSize: tokens.length,
    padId: idOf("pad"),
    bosId: idOf("bos"),
    eosId: idOf("eos"),
    specialIds,
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const out: number[] = [];
      if (opts.addBos && self.bosId !== null) out.push(self.bosId); // none: see EncodeOptions.addBos
      for (let i = 0; i < text.length; ) {
        const code = text.charCodeAt(i);
        if (specialStarts.has(text[i] as string)) {
          const hit = specialTokens.find((t) => text.startsWith(t, i));
          if (hit) {
            out.push(toId.get(hit) as number);
            i += hit.length;
            continue;
          }
        }
        const f = fast[code] as number;
        if (f >= 0) {
          out.push(f);
          i++;
          continue;
        }
        const ch = String.fromCodePoint(text.codePointAt(i) as number);
        const id = toId.get(ch);
        if (id !== undefined && !specialSet.has(id)) out.push(id);
        else if (unkId !== null) out.push(unkId);
        else throw new AutodidactError(`char tokenizer: character ${JSON.stringify(ch)} at offset ${i} is not in the alphabet`, Code.InvalidArgument);
        i += ch.length;
      }
      if (opts.addEos) out.push(required(self.eosId, "eos"));
      return out;
    },
    decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
      let s = "";
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as number;
        if (opts.skipSpecial && specialSet.has(id)) continue;
        const t = tokens[id];
        if (t === undefined) throw new AutodidactError(`char tokenizer: id ${id} is outside the vocabulary (size ${tokens.length})`, Code.InvalidArgument);
        s += t;
      }
      return s;
    },
    tokenToId: (t) => toId.get(t),
    idToToken: (id) => tokens[id],
    toJSON() {
      const vocab: Record<string, number> = {};
      tokens.forEach((t, i) => (vocab[t] = i));
      return {
        version: "1.0",
        truncation: null,
        padding: null,
        added_tokens: specials.map((s) => ({
          id: toId.get(s.token),
          content: s.token,
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: false,
          special: true,
        })),
        normalizer: null,
        pre_tokenizer: null,
        post_processor: null,
        // Character BPE without merges: every character is its own token; Fuse joins them back.
        decoder: { type: "Fuse" },
        model: {
          type: "BPE",
          dropout: null,
          unk_token: unk,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: false,
          byte_fallback: false,
          ignore_merges: false,
          vocab,
          merges: [],
        },
      };
    },
  };
  return self;
}

function required(id: number | null, what: string): number {
  if (id === null) throw new AutodidactError(`tokenizer has no ${what} token`, Code.FailedPrecondition);
  return id;
}

/**
 * Recognises a `tokenizer.json` written by {@link CharTokenizer.toJSON} (merge-free BPE over
 * single characters, no normalizer or pre-tokenizer) and rebuilds the fast native tokenizer;
 * returns null for anything else.
 */
export function charTokenizerFromJson(json: Record<string, unknown>): CharTokenizer | null {
  const model = json.model as { type?: string; vocab?: Record<string, number>; merges?: unknown[]; unk_token?: string | null } | undefined;
  if (!model || model.type !== "BPE" || !model.vocab || (model.merges?.length ?? 0) !== 0) return null;
  if (json.normalizer || json.pre_tokenizer || json.post_processor) return null;
  const decoder = json.decoder as { type?: string } | null | undefined;
  if (!decoder || decoder.type !== "Fuse") return null;
  const added = (json.added_tokens as { id: number; content: string; special?: boolean }[] | undefined) ?? [];
  const byId = Object.entries(model.vocab).sort((a, b) => a[1] - b[1]);
  if (byId.some(([, id], i) => id !== i)) return null;
  const specialsById = new Map(added.filter((a) => a.special).map((a) => [a.id, a.content]));
  const nSpecial = specialsById.size;
  if ([...specialsById.keys()].some((id) => id >= nSpecial)) return null;
  const roleOf = (re: RegExp): string | null => [...specialsById.values()].find((t) => re.test(t)) ?? null;
  const pad = roleOf(/pad/i);
  const bos = roleOf(/bos|^<s>$/i);
  const eos = roleOf(/eos|^<\/s>$/i);
  const unk = model.unk_token ?? null;
  const order = [pad, bos, eos, unk].filter((t): t is string => t !== null);
  if (order.length !== nSpecial || order.some((t, i) => specialsById.get(i) !== t)) return null;
  const alphabet = byId.slice(nSpecial).map(([t]) => t);
  if (alphabet.some((t) => Array.from(t).length !== 1)) return null;
  return createCharTokenizer({ alphabet, pad, bos, eos, unk });
}
