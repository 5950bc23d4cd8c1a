// The AGREEMENT curriculum's measurement: the generator answers fresh unlabelled problems at one
// difficulty (not published: nothing enters the loop), every model critic scores each answer, and
// the agreement is the share every one of them approved. No label is read anywhere.
import type { Sample } from "../../src/gen/autodidact/v1/sample_pb.js";
import type { ProbeMeasurement } from "./curriculum.js";
import type { Peers } from "./peers.js";
import { seedOf } from "./seeds.js";

/** What a probe of one round asks for. */
export interface ProbeSettings {
  readonly runId: string;
  readonly runSeed: bigint;
  readonly task: string;
  readonly round: number;
  readonly problems: number;
  /** Critic ids of the model critics. */
  readonly critics: readonly string[];
}

/** Scores at most this many samples at once (each against every model critic). */
const CONCURRENCY = 8;

/** Measures the model critics' agreement with the generator at a difficulty. */
export class AgreementProbe {
  readonly #peers: Peers;
  readonly #settings: ProbeSettings;
  readonly #signal: AbortSignal;

  constructor(peers: Peers, settings: ProbeSettings, signal: AbortSignal) {
    this.#peers = peers;
    this.#settings = settings;
    this.#signal = signal;
  }

  async measure(difficulty: number): Promise<ProbeMeasurement> {
    const s = this.#settings;
    const samples: Sample[] = [];
    const seed = seedOf(s.runId, s.runSeed, s.round, difficulty, "probe");
    for await (const sample of this.#peers.generator().generate({ task: s.task, count: s.problems, difficulty, temperature: 0, publish: false, round: s.round, seed }, { signal: this.#signal })) {
      samples.push(sample);
    }
    let agreed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < samples.length) {
        const sample = samples[next++]!;
        const verdicts = await Promise.all(s.critics.map((id) => this.#peers.critic(id).score({ sample }, { signal: this.#signal })));
        if (verdicts.every((v) => v.approve)) agreed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, samples.length) }, worker));
    return { problems: samples.length, agreement: samples.length > 0 ? agreed / samples.length : 0 };
  }
}
