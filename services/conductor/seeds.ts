// Seeds derived from a run's seed and where they are used, so a repeat after a crash asks for exactly
// the same samples (same prompts, same ids) and every probe is reproducible.
import { createHash } from "node:crypto";

/** A Generate seed in 1..2^31-1 (0 means "random" to the generator) from the parts that name its use. */
export function seedOf(...parts: readonly (string | number | bigint)[]): bigint {
  const digest = createHash("sha256").update(parts.map(String).join("\u0000")).digest();
  return BigInt(1 + (digest.readUInt32BE(0) % (2 ** 31 - 2)));
}

/** The id prefix of a round's proposals: `<run>-r<round>` (ids `<run>-r<round>-<index>`). */
export function proposalPrefix(runId: string, round: number): string {
  return `${runId}-r${round}`;
}
