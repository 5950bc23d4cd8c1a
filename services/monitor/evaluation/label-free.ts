// Label-free signals for the gate beyond the validation range: what the mesh can say about a
// candidate at difficulties it has no labels for. Every prompt comes from the task's prompt sampler
// (never a held-out problem) and no answer is ever compared with the truth — only with the answers
// of other models (peer agreement) or with the candidate's own samples (self-consistency).
import type { TextGenerator } from "../../../src/engine/index.js";
import type { TaskPack } from "../../../src/domain/tasks/index.js";
import type { LabelFreeDifficulty } from "./gate.js";

/** Temperature-1 samples per prompt for self-consistency. */
export const SELF_CONSISTENCY_SAMPLES = 4;

/** The models a label-free measurement compares. */
export interface LabelFreeModels {
  readonly candidate: TextGenerator;
  readonly incumbent?: TextGenerator;
  /** Other lineages' promoted models; none: self-consistency instead of agreement. */
  readonly peers: readonly TextGenerator[];
}

/** Share of positions where two answer lists agree under the task's equivalence (0 for none). */
export function agreementShare(pack: TaskPack, a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || a.length !== b.length) return 0;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (pack.equivalent(a[i]!, b[i]!)) same++;
  return same / a.length;
}

async function greedy(g: TextGenerator, pack: TaskPack, prompts: readonly string[], difficulty: number): Promise<string[]> {
  const out = await g.generate([...prompts], { maxNewTokens: pack.maxAnswerLength(difficulty) + 1, greedy: true, addBos: true });
  return out.map((o) => pack.normalize(o.text));
}

/** Mean share of a model's temperature-1 samples that match its own greedy answer. */
async function selfConsistency(g: TextGenerator, pack: TaskPack, prompts: readonly string[], difficulty: number, seed: string): Promise<number> {
  const base = await greedy(g, pack, prompts, difficulty);
  let sum = 0;
  for (let k = 0; k < SELF_CONSISTENCY_SAMPLES; k++) {
    const out = await g.generate([...prompts], { maxNewTokens: pack.maxAnswerLength(difficulty) + 1, temperature: 1, seed: `${seed}:${k}`, addBos: true });
    sum += agreementShare(pack, base, out.map((o) => pack.normalize(o.text)));
  }
  return sum / SELF_CONSISTENCY_SAMPLES;
}

/**
 * Measures the candidate's and the incumbent's label-free signal at each difficulty on the same
 * `probeSize` fresh prompts (seeded by `seed` and the difficulty): agreement with the peers' greedy
 * answers averaged over peers, or self-consistency when there are no peers.
 */
export async function measureLabelFree(
  models: LabelFreeModels,
  pack: TaskPack,
  difficulties: readonly number[],
  probeSize: number,
  seed: string,
): Promise<LabelFreeDifficulty[]> {
  const out: LabelFreeDifficulty[] = [];
  for (const d of difficulties) {
    const prompts = pack.createPromptSampler({ seed: `label-free:${seed}`, difficulty: d }).take(probeSize).map((p) => p.prompt);
    if (models.peers.length > 0) {
      const peerAnswers = await Promise.all(models.peers.map((p) => greedy(p, pack, prompts, d)));
      const score = async (g: TextGenerator): Promise<number> => {
        const mine = await greedy(g, pack, prompts, d);
        return peerAnswers.reduce((s, theirs) => s + agreementShare(pack, mine, theirs), 0) / peerAnswers.length;
      };
      const candidate = await score(models.candidate);
      const incumbent = models.incumbent ? await score(models.incumbent) : -1;
      out.push({ difficulty: d, count: prompts.length, signal: "peer_agreement", candidate, incumbent });
    } else {
      const candidate = await selfConsistency(models.candidate, pack, prompts, d, `${seed}:${d}`);
      const incumbent = models.incumbent ? await selfConsistency(models.incumbent, pack, prompts, d, `${seed}:${d}`) : -1;
      out.push({ difficulty: d, count: prompts.length, signal: "self_consistency", candidate, incumbent });
    }
  }
  return out;
}
