import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { loadTokenizer, sha256, tensor, type RemoteSession, type SessionHost, type Tokenizer } from "../../engine/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { LoadedModel } from "./model-holder.js";

/** Input and output names of the Hugging Face sequence-classification ONNX signature. */
export const CLASSIFIER_SIGNATURE = { inputIds: "input_ids", attentionMask: "attention_mask", tokenTypeIds: "token_type_ids", logits: "logits" } as const;

/**
 * A sequence classifier / reward model served from ONNX with the HF signature
 * (`input_ids`, `attention_mask`[, `token_type_ids`] → `logits` [batch, labels]).
 */
export interface ClassifierModel {
  readonly session: RemoteSession;
  /** The folder's tokenizer.json, when the model came with one (else the caller encodes). */
  readonly tokenizer: Tokenizer | undefined;
  /** Label probabilities (softmax of the logits), one row per sequence. */
  classify(sequences: readonly (readonly number[])[]): Promise<number[][]>;
}

const ONNX_NAMES = ["model.onnx", "onnx/model.onnx"];

async function findOnnx(path: string): Promise<{ file: string; dir: string | undefined }> {
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new AutodidactError(`${path} not found`, Code.NotFound, { cause });
  }
  if (!info.isDirectory()) return { file: path, dir: undefined };
  for (const name of ONNX_NAMES) {
    const file = join(path, name);
    if (await stat(file).then(() => true, () => false)) return { file, dir: path };
  }
  throw new AutodidactError(`${path}: no classifier ONNX (looked for ${ONNX_NAMES.join(", ")})`, Code.NotFound);
}

/** Checks the HF sequence-classification signature; InvalidArgument naming what is missing. */
export function checkClassifierSignature(session: Pick<RemoteSession, "inputs" | "outputs">): void {
  const inputs = new Set(session.inputs.map((v) => v.name));
  const allowed = new Set<string>(Object.values(CLASSIFIER_SIGNATURE));
  for (const need of [CLASSIFIER_SIGNATURE.inputIds, CLASSIFIER_SIGNATURE.attentionMask]) {
    if (!inputs.has(need)) throw new AutodidactError(`classifier has no input ${need} (inputs: ${[...inputs].join(", ")})`, Code.InvalidArgument);
  }
  const extra = [...inputs].filter((n) => !allowed.has(n));
  if (extra.length > 0) throw new AutodidactError(`classifier has inputs this critic cannot feed: ${extra.join(", ")}`, Code.InvalidArgument);
  if (!session.outputs.some((v) => v.name === CLASSIFIER_SIGNATURE.logits)) {
    throw new AutodidactError(`classifier has no output logits (outputs: ${session.outputs.map((v) => v.name).join(", ")})`, Code.InvalidArgument);
  }
}

function softmax(row: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i] as number);
  const exps = Array.from(row, (x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * Loads a classifier from an `.onnx` file or a folder (model.onnx or onnx/model.onnx, optional
 * tokenizer.json) into `host`, checks its signature, and returns it as a swappable model whose
 * version is `sha256:<digest of the ONNX bytes>`.
 */
export async function loadClassifierModel(host: SessionHost, path: string, version?: string): Promise<LoadedModel<ClassifierModel>> {
  const { file, dir } = await findOnnx(path);
  const bytes = new Uint8Array(await readFile(file));
  const tokenizer = dir !== undefined && (await stat(join(dir, "tokenizer.json")).then(() => true, () => false)) ? await loadTokenizer(dir) : undefined;
  let session: RemoteSession;
  try {
    session = await host.load(bytes);
  } catch (cause) {
    throw new AutodidactError(`${file} is not a loadable ONNX model: ${cause instanceof Error ? cause.message : String(cause)}`, Code.InvalidArgument, { cause });
  }
  try {
    checkClassifierSignature(session);
  } catch (err) {
    await session.release().catch(() => undefined);
    throw err;
  }
  const wantsTypes = session.inputs.some((v) => v.name === CLASSIFIER_SIGNATURE.tokenTypeIds);
  const model: ClassifierModel = {
    session,
    tokenizer,
    async classify(sequences) {
      const B = sequences.length;
      if (B === 0) return [];
      const T = Math.max(1, ...sequences.map((s) => s.length));
      const ids = new BigInt64Array(B * T);
      const mask = new BigInt64Array(B * T);
      sequences.forEach((s, b) => {
        s.forEach((id, t) => {
          ids[b * T + t] = BigInt(id);
          mask[b * T + t] = 1n;
        });
      });
      const feeds = {
        [CLASSIFIER_SIGNATURE.inputIds]: tensor("int64", [B, T], ids),
        [CLASSIFIER_SIGNATURE.attentionMask]: tensor("int64", [B, T], mask),
        ...(wantsTypes ? { [CLASSIFIER_SIGNATURE.tokenTypeIds]: tensor("int64", [B, T], new BigInt64Array(B * T)) } : {}),
      };
      const out = await session.run(feeds, { outputNames: [CLASSIFIER_SIGNATURE.logits] });
      const logits = out[CLASSIFIER_SIGNATURE.logits];
      if (logits === undefined || logits.dims.length !== 2 || logits.dims[0] !== B) {
        throw new AutodidactError(`classifier logits have shape [${logits?.dims.join(",") ?? ""}], want [${B}, labels]`, Code.FailedPrecondition);
      }
      const L = logits.dims[1] as number;
      const data = Array.from(logits.data as ArrayLike<number>, Number);
      return Array.from({ length: B }, (_, b) => softmax(data.slice(b * L, (b + 1) * L)));
    },
  };
  return { version: version ?? `sha256:${sha256(bytes)}`, model, release: () => session.release() };
}

/** Warm-up of a classifier: one short sequence must give at least two finite label probabilities. */
export async function validateClassifierModel(loaded: LoadedModel<ClassifierModel>): Promise<void> {
  const [probs] = await loaded.model.classify([[1, 2]]);
  if (probs === undefined || probs.length < 2 || probs.some((p) => !Number.isFinite(p))) {
    throw new AutodidactError(`${loaded.version}: warm-up classification gave no finite probabilities over >= 2 labels`, Code.FailedPrecondition);
  }
}
