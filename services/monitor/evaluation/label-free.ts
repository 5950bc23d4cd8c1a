// Label-free signals for the gate beyond the validation range: what the mesh can say about a
// candidate at difficulties it has no labels for. Every prompt comes from the task's prompt sampler
// (never a held-out problem) and no answer is ever compared with the truth — only with the answers
// of other models (peer agreement) or with the candidate's own samples (self-consistency).
import type { TextGenerator } from "../../../src/engine/index.js";
import type { TaskPack } from "../../../src/domain/tasks/index.js";
import type { LabelFreeDifficulty } from "./gate.js";

/** Temperature-1 samples per prompt for self-consistency. */
export const SELF_CONSISTENCY_SAMPLES = 4;

/**
 * A model a label-free check may ask for answers: `key` names its weights (`lineage@version`), and
 * `generator` loads it only when an answer is not cached already.
 */
export interface LabelFreeModel {
  readonly key: string;
  generator(): Promise<TextGenerator>;
}

/** The models a label-free measurement compares. */
export interface LabelFreeModels {
  readonly candidate: LabelFreeModel;
  readonly incumbent?: LabelFreeModel;
  /** Other lineages' promoted models; none: self-consistency instead of agreement. */
  readonly peers: readonly LabelFreeModel[];
}

/**
 * Greedy answers by (model, seed, difficulty, count). The candidates of one round share their prompts
 * (seeded by the round), and one lineage's incumbent is the others' peer: each model answers once.
 */
export class AnswerCache {
  readonly #entries = new Map<string, string[]>();
  readonly #capacity: number;

  constructor(capacity = 256) {
    this.#capacity = capacity;
  }

  /** The cached answers under `key`, else `compute()`'s, remembered (oldest dropped past capacity). */
  async get(key: string, compute: () => Promise<string[]>): Promise<string[]> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) return hit;
    const answers = await compute();
    this.#entries.set(key, answers);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value as string);
    return answers;
  }
}

/** Share of positions where two answer lists agree under the task's equivalence (0 for none). */
export function agreementShare(pack: TaskPack, a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || a.length !== b.length) return 0;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (pack.equivalent(a[i]!, b[i]!)) same++;
  return same / a.length;
}

/** Options of {@link measureLabelFree}. */
export interface LabelFreeOptions {
  readonly difficulties: readonly number[];
  readonly probeSize: number;
  /** Seeds the prompts (and the samples of self-consistency): the same seed, the same prompts. */
  readonly seed: string;
  readonly cache?: AnswerCache;
}

/**
 * Measures the candidate's and the incumbent's label-free signal at each difficulty on the same
 * `probeSize` fresh prompts: agreement with the peers' greedy answers averaged over peers, or
 * self-consistency (share of temperature-1 samples matching the greedy answer) when there are no peers.
 */
export async function measureLabelFree(models: LabelFreeModels, pack: TaskPack, o: LabelFreeOptions): Promise<LabelFreeDifficulty[]> {
  const cache = o.cache ?? new AnswerCache();
  const out: LabelFreeDifficulty[] = [];
  for (const d of o.difficulties) {
    const prompts = pack.createPromptSampler({ seed: `label-free:${o.seed}`, difficulty: d }).take(o.probeSize).map((p) => p.prompt);
    const maxNewTokens = pack.maxAnswerLength(d) + 1;
    const greedy = (m: LabelFreeModel): Promise<string[]> =>
      cache.get(`${m.key}|${o.seed}|${d}|${prompts.length}`, async () => {
        const answers = await (await m.generator()).generate(prompts, { maxNewTokens, greedy: true, addBos: true });
        return answers.map((a) => pack.normalize(a.text));
      });
    if (models.peers.length > 0) {
      const peerAnswers = await Promise.all(models.peers.map(greedy));
      const score = async (m: LabelFreeModel): Promise<number> => {
        const mine = await greedy(m);
        return peerAnswers.reduce((s, theirs) => s + agreementShare(pack, mine, theirs), 0) / peerAnswers.length;
      };
      const candidate = await score(models.candidate);
      const incumbent = models.incumbent ? await score(models.incumbent) : -1;
      out.push({ difficulty: d, count: prompts.length, signal: "peer_agreement", candidate, incumbent });
    } else {
      const selfConsistency = async (m: LabelFreeModel): Promise<number> => {
        const base = await greedy(m);
        const g = await m.generator();
        let sum = 0;
        for (let k = 0; k < SELF_CONSISTENCY_SAMPLES; k++) {
          const samples = await g.generate(prompts, { maxNewTokens, temperature: 1, seed: `${o.seed}:${d}:${k}`, addBos: true });
          sum += agreementShare(pack, base, samples.map((s) => pack.normalize(s.text)));
        }
        return sum / SELF_CONSISTENCY_SAMPLES;
      };
      const candidate = await selfConsistency(models.candidate);
      const incumbent = models.incumbent ? await selfConsistency(models.incumbent) : -1;
      out.push({ difficulty: d, count: prompts.length, signal: "self_consistency", candidate, incumbent });
    }
  }
  return out;
}
