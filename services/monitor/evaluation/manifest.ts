import type { CheckpointRecord } from "../../../src/domain/registry/index.js";
import type { LabeledSample } from "./evaluate-model.js";

/** What the trainer's manifest says about a checkpoint's data, read tolerantly (camelCase or snake_case). */
export interface ManifestSummary {
  readonly task: string | undefined;
  readonly sampleIdsDigest: string;
  readonly sampleCount: number;
  readonly syntheticCount: number;
  readonly realCount: number;
  readonly samplesProposed: number;
  readonly samplesAccepted: number;
  /** Critic votes summary: approve/reject counts and agreement, whatever the manifest provides. */
  readonly criticVotes: Record<string, number>;
  /** Rounds whose samples formed it (its own round when the manifest does not list them). */
  readonly rounds: number[];
  readonly acceptedSamples: LabeledSample[];
  readonly proposedSamples: LabeledSample[];
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : 0);
const pick = (o: Record<string, unknown> | undefined, ...keys: string[]): unknown => {
  if (o === undefined) return undefined;
  for (const k of keys) if (o[k] !== undefined) return o[k];
  return undefined;
};
const obj = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
const samples = (v: unknown): LabeledSample[] =>
  Array.isArray(v)
    ? v.flatMap((s) => {
        const o = obj(s);
        const prompt = pick(o, "prompt");
        const completion = pick(o, "completion", "answer", "label");
        return typeof prompt === "string" && typeof completion === "string" ? [{ prompt, completion }] : [];
      })
    : [];

/** Reads the parts of a trainer manifest the monitor reports on; missing fields read as empty. */
export function summarizeManifest(record: CheckpointRecord): ManifestSummary {
  const m = record.manifest;
  const mix = obj(pick(m, "mix"));
  const votes = obj(pick(m, "criticVotes", "critic_votes", "votes")) ?? {};
  const rounds = pick(m, "rounds", "roundsIncluded", "rounds_included");
  const task = pick(m, "task");
  return {
    task: typeof task === "string" && task !== "" ? task : undefined,
    sampleIdsDigest: String(pick(m, "sampleIdsDigest", "sample_ids_digest") ?? ""),
    sampleCount: num(pick(m, "sampleCount", "sample_count")),
    syntheticCount: num(pick(mix, "syntheticCount", "synthetic_count", "synthetic")),
    realCount: num(pick(mix, "realCount", "real_count", "real")),
    samplesProposed: num(pick(m, "samplesProposed", "samples_proposed")),
    samplesAccepted: num(pick(m, "samplesAccepted", "samples_accepted")),
    criticVotes: Object.fromEntries(Object.entries(votes).map(([k, v]) => [k, num(v)])),
    rounds: Array.isArray(rounds) ? rounds.map(num) : [record.round],
    acceptedSamples: samples(pick(m, "samples", "acceptedSamples", "accepted_samples")),
    proposedSamples: samples(pick(m, "proposedSamples", "proposed_samples")),
  };
}

