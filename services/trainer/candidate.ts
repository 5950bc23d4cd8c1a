/**
 * What one kind of trained model hands to the round runner's registration (rounds.ts): its files,
 * the kind-specific part of its training manifest, and its metrics. Exists so decoders and game
 * policy/value networks are versioned, registered and announced by the same code.
 */
export interface CandidateFiles {
  /** Writes the model's files into an empty folder (metadata: lineage, version, parent, round). */
  write(dir: string, metadata: Record<string, string>): Promise<void>;
  /** Manifest fields beyond the common ones (version, lineage, parent, round, task, files…). */
  readonly manifest: Record<string, unknown>;
  readonly metrics: Record<string, number>;
}
