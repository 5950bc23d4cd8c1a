import type { Dim, Shape } from "../graph/ir.js";

/**
 * Static-shape helpers for gradient rules. They exist so rules can decide at graph-build time
 * (not at run time) which axes were broadcast, which keeps the emitted backward graph small.
 */

/** True when two dims are known to be the same size (same number or same symbolic name). */
export function sameDim(a: Dim, b: Dim): boolean {
  return a !== null && a === b;
}

/** NumPy broadcast of two dims; `null` when the result cannot be known statically. */
export function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  if (a === null) return b;
  return a;
}

/** NumPy (multidirectional) broadcast of shapes, dim by dim from the right. */
export function broadcastShapes(...shapes: readonly Shape[]): Shape {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const j = s.length - rank + i;
      if (j >= 0) d = broadcastDim(d, s[j]!);
    }
    out.push(d);
  }
  return out;
}

/** Normalizes a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** The permutation that undoes `perm`. */
export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

/** True when every dim is a number. */
export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === "number");
}
