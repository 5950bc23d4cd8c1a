/** Left-padded prefill tensors of a batch: ids, attention mask and positions, each `[B, L]` row-major. */
export interface LeftPadded {
  readonly ids: BigInt64Array;
  readonly mask: BigInt64Array;
  readonly pos: BigInt64Array;
}

/**
 * Lays out token sequences right-aligned in `[B, L]` (pad tokens, mask 0 and position 0 on the
 * left), so every row's next token lands in the same column: the prefill shared by step-by-step
 * decoding, the greedy loop and teacher-forced scoring.
 */
export function leftPad(seqs: readonly (readonly number[])[], L: number, padId: number): LeftPadded {
  const B = seqs.length;
  const ids = new BigInt64Array(B * L);
  const mask = new BigInt64Array(B * L);
  const pos = new BigInt64Array(B * L);
  seqs.forEach((s, b) => {
    const off = L - s.length;
    for (let t = 0; t < L; t++) {
      const real = t >= off;
      ids[b * L + t] = BigInt(real ? (s[t - off] as number) : padId);
      mask[b * L + t] = real ? 1n : 0n;
      pos[b * L + t] = real ? BigInt(t - off) : 0n;
    }
  });
  return { ids, mask, pos };
}
