import { AutodidactError, Code } from "../../platform/errors/index.js";
import { shapeSize, type Dim, type Shape } from "./ir.js";

/**
 * Shape arithmetic shared by the builder's inference and by validation. Dims may be symbolic; we
 * only fail when two fixed sizes truly disagree, and otherwise keep the most specific dim we know.
 */

/** Merges two dims that must be equal (symbolic names yield to fixed sizes). */
export function unifyDim(a: Dim, b: Dim, what: string): Dim {
  if (typeof a === "number" && typeof b === "number") {
    if (a !== b) throw shapeError(`${what}: ${a} vs ${b}`);
    return a;
  }
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  if (a !== null && a === b) return a;
  return a ?? b;
}

/** Numpy-style multidirectional broadcasting of shapes, as ONNX Add/Mul/Where use it. */
export function broadcastShapes(shapes: readonly Shape[], what = "broadcast"): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i];
      if (d === undefined || d === 1) continue;
      if (dim === 1) {
        dim = d;
        continue;
      }
      if (typeof dim === "number" && typeof d === "number" && dim !== d) {
        throw shapeError(`${what}: cannot broadcast ${fmtShapes(shapes)}`);
      }
      dim = typeof dim === "number" ? dim : typeof d === "number" ? d : dim === d ? dim : null;
    }
    out.push(dim);
  }
  return out;
}

/** Shape of MatMul(a, b) with numpy semantics (1-D operands promoted and squeezed back). */
export function matMulShape(a: Shape, b: Shape): Dim[] {
  if (a.length === 0 || b.length === 0) throw shapeError("MatMul: scalar operand");
  const a2: Dim[] = a.length === 1 ? [1, a[0] as Dim] : [...a];
  const b2: Dim[] = b.length === 1 ? [b[0] as Dim, 1] : [...b];
  unifyDim(a2[a2.length - 1] as Dim, b2[b2.length - 2] as Dim, `MatMul inner dims ${fmt(a)} x ${fmt(b)}`);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], "MatMul batch");
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2] as Dim);
  if (b.length > 1) out.push(b2[b2.length - 1] as Dim);
  return out;
}

/** Normalises a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw shapeError(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Output shape of Reshape with a constant target (0 = copy, -1 = infer when possible). */
export function reshapeShape(input: Shape, target: readonly number[]): Dim[] {
  const out: Dim[] = target.map((t, i) => (t === 0 ? (input[i] ?? null) : t === -1 ? null : t));
  const minus = target.indexOf(-1);
  if (minus >= 0) {
    const total = shapeSize(input);
    let known = 1;
    let ok = total !== null;
    for (let i = 0; i < out.length; i++) {
      if (i === minus) continue;
      const d = out[i];
      if (typeof d === "number") known *= d;
      else ok = false;
    }
    if (ok && total !== null) {
      if (known === 0 || total % known !== 0) throw shapeError(`Reshape ${fmt(input)} -> [${target.join(",")}]`);
      out[minus] = total / known;
    } else {
      // Symbolic: if exactly one input dim is symbolic and the rest of sizes match, carry it.
      out[minus] = carrySymbolic(input, out, minus);
    }
  } else {
    const total = shapeSize(input);
    const t = shapeSize(out);
    if (total !== null && t !== null && total !== t) {
      throw shapeError(`Reshape ${fmt(input)} -> [${target.join(",")}]: element counts differ`);
    }
  }
  return out;
}

function carrySymbolic(input: Shape, out: Dim[], minus: number): Dim {
  const sym = input.filter((d) => typeof d !== "number");
  if (sym.length !== 1 || sym[0] === null) return null;
  const outFixed = out.filter((d, i) => i !== minus && typeof d !== "number");
  if (outFixed.length > 0) return null;
  let inKnown = 1;
  for (const d of input) if (typeof d === "number") inKnown *= d;
  let outKnown = 1;
  for (let i = 0; i < out.length; i++) if (i !== minus) outKnown *= out[i] as number;
  return inKnown === outKnown ? (sym[0] as Dim) : null;
}

/** `[2,"seq",?]` formatting for messages. */
export function fmt(shape: Shape): string {
  return `[${shape.map((d) => (d === null ? "?" : String(d))).join(",")}]`;
}

function fmtShapes(shapes: readonly Shape[]): string {
  return shapes.map(fmt).join(" with ");
}

function shapeError(message: string): AutodidactError {
  return new AutodidactError(`shape mismatch: ${message}`, Code.InvalidArgument);
}
