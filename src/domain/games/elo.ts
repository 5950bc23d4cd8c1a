import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Tally } from "./match.js";

/** Results of `a` against `b` (wins, draws and losses counted for `a`). */
export interface PairResult extends Tally {
  readonly a: string;
  readonly b: string;
}

/** Options of {@link fitElo}. */
export interface EloOptions {
  /** Players whose rating is given, not fitted (at least one: the scale's zero, e.g. random = 0). */
  readonly fixed: Readonly<Record<string, number>>;
  /**
   * Virtual draws added to every pair that played (default 1). They keep ratings finite when a
   * player won or lost every game (a 40–0 record against random reads as +763, not +∞).
   */
  readonly priorDraws?: number;
  readonly maxIterations?: number;
  /** Stop when no rating moves by more than this many Elo. Default 1e-6. */
  readonly tolerance?: number;
}

/** One fitted rating. */
export interface EloRating {
  readonly name: string;
  readonly elo: number;
  /** Standard error from the curvature of the likelihood (0 for fixed players). */
  readonly stderr: number;
  /** Real games the player took part in. */
  readonly games: number;
  readonly fixed: boolean;
}

const LN10_OVER_400 = Math.LN10 / 400;

/** Expected score of a player rated `diff` Elo above the opponent: 1 / (1 + 10^(−diff/400)). */
export function expectedScore(diff: number): number {
  return 1 / (1 + Math.pow(10, -diff / 400));
}

/** The Elo difference that gives expected score `score` (−400·log10(1/score − 1)); ±Infinity at 0 and 1. */
export function eloFromScore(score: number): number {
  if (score <= 0) return -Infinity;
  if (score >= 1) return Infinity;
  return -400 * Math.log10(1 / score - 1);
}

/**
 * Maximum-likelihood Elo ratings (the Bradley–Terry model on the Elo scale) from match results.
 * Each game counts its score s ∈ {1, ½, 0} for `a`, and P(a scores against b) =
 * 1 / (1 + 10^((R_b − R_a)/400)); the free ratings maximize
 *   Σ_pairs  S_ab·ln p_ab + (n_ab − S_ab)·ln(1 − p_ab),
 * with S_ab = wins + draws/2 + priorDraws/2 and n_ab = games + priorDraws, while the `fixed`
 * players keep their given ratings (random play pinned at 0, or a ladder of anchors calibrated
 * once, so a model's rating is comparable from round to round). Solved by Newton's method;
 * stderr = √(diag of the inverse Fisher information), in Elo. Every fitted player must be linked
 * to a fixed one through games (FailedPrecondition otherwise: its rating would be arbitrary).
 */
export function fitElo(results: readonly PairResult[], options: EloOptions): EloRating[] {
  const prior = options.priorDraws ?? 1;
  if (!(prior >= 0)) throw new AutodidactError(`priorDraws must be >= 0, got ${prior}`, Code.InvalidArgument);
  const fixedNames = Object.keys(options.fixed);
  if (fixedNames.length === 0) throw new AutodidactError("Elo needs at least one fixed player (the scale's anchor)", Code.InvalidArgument);
  const names: string[] = [...fixedNames];
  const index = new Map(names.map((n, i) => [n, i]));
  const id = (n: string): number => {
    let i = index.get(n);
    if (i === undefined) {
      i = names.length;
      names.push(n);
      index.set(n, i);
    }
    return i;
  };
  // Aggregate per unordered pair: games n and score S of the lower index.
  const pairs = new Map<string, { i: number; j: number; n: number; s: number }>();
  const games = new Map<string, number>();
  for (const r of results) {
    for (const k of [r.wins, r.draws, r.losses]) {
      if (!Number.isInteger(k) || k < 0) throw new AutodidactError(`results ${r.a} vs ${r.b}: counts must be non-negative integers`, Code.InvalidArgument);
    }
    if (r.a === r.b) throw new AutodidactError(`results of ${r.a} against itself carry no rating information`, Code.InvalidArgument);
    const n = r.wins + r.draws + r.losses;
    if (n === 0) continue;
    let i = id(r.a);
    let j = id(r.b);
    let s = r.wins + r.draws / 2;
    if (i > j) {
      [i, j] = [j, i];
      s = n - s;
    }
    const key = `${i}:${j}`;
    const p = pairs.get(key) ?? { i, j, n: 0, s: 0 };
    pairs.set(key, { i, j, n: p.n + n, s: p.s + s });
    games.set(r.a, (games.get(r.a) ?? 0) + n);
    games.set(r.b, (games.get(r.b) ?? 0) + n);
  }
  const edges = [...pairs.values()].map((p) => ({ ...p, n: p.n + prior, s: p.s + prior / 2 }));
  const isFixed = names.map((n) => n in options.fixed);
  checkConnected(names, isFixed, edges);

  // Ratings in natural units (r = Elo·ln10/400); free players indexed 0..F-1.
  const r = names.map((n) => (n in options.fixed ? (options.fixed[n] as number) * LN10_OVER_400 : 0));
  const free = names.map((_, i) => i).filter((i) => !isFixed[i]);
  const slot = new Map(free.map((p, k) => [p, k]));
  const F = free.length;
  const maxIt = options.maxIterations ?? 100;
  const tol = (options.tolerance ?? 1e-6) * LN10_OVER_400;
  let info: number[][] = [];
  for (let it = 0; it < maxIt && F > 0; it++) {
    const grad = new Array<number>(F).fill(0);
    info = Array.from({ length: F }, () => new Array<number>(F).fill(0));
    for (const e of edges) {
      const p = 1 / (1 + Math.exp(-((r[e.i] as number) - (r[e.j] as number))));
      const w = e.n * p * (1 - p);
      const g = e.s - e.n * p; // ∂/∂r_i; ∂/∂r_j is its negative
      const a = slot.get(e.i);
      const b = slot.get(e.j);
      if (a !== undefined) {
        grad[a]! += g;
        info[a]![a]! += w;
      }
      if (b !== undefined) {
        grad[b]! -= g;
        info[b]![b]! += w;
      }
      if (a !== undefined && b !== undefined) {
        info[a]![b]! -= w;
        info[b]![a]! -= w;
      }
    }
    const step = solve(info, grad);
    let moved = 0;
    free.forEach((p, k) => {
      // Newton step, damped so one step never moves a rating by more than 2 natural units (~350 Elo).
      const d = Math.max(-2, Math.min(2, step[k] as number));
      r[p] = (r[p] as number) + d;
      moved = Math.max(moved, Math.abs(d));
    });
    if (moved < tol) break;
  }
  const covariance = F > 0 ? invert(info) : [];
  return names.map((name, i) => {
    const k = slot.get(i);
    const variance = k === undefined ? 0 : (covariance[k]?.[k] ?? 0);
    return {
      name,
      elo: (r[i] as number) / LN10_OVER_400,
      stderr: Math.sqrt(Math.max(0, variance)) / LN10_OVER_400,
      games: games.get(name) ?? 0,
      fixed: isFixed[i] as boolean,
    };
  });
}

function checkConnected(names: readonly string[], isFixed: readonly boolean[], edges: readonly { i: number; j: number }[]): void {
  const reached = new Set(names.map((_, i) => i).filter((i) => isFixed[i]));
  let grew = true;
  while (grew) {
    grew = false;
    for (const e of edges) {
      if (reached.has(e.i) !== reached.has(e.j)) {
        reached.add(e.i);
        reached.add(e.j);
        grew = true;
      }
    }
  }
  const lost = names.filter((_, i) => !reached.has(i));
  if (lost.length > 0) throw new AutodidactError(`no games link ${lost.join(", ")} to a fixed player; their Elo is undefined`, Code.FailedPrecondition);
}

/** Solves A·x = b for a small symmetric positive-definite A (Gaussian elimination, partial pivoting). */
function solve(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const pivot = m[c]![c]!;
    if (Math.abs(pivot) < 1e-300) throw new AutodidactError("Elo fit: singular information matrix", Code.Internal);
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / pivot;
      if (f === 0) continue;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

/** Inverse of a small matrix, column by column through {@link solve}. */
function invert(a: readonly (readonly number[])[]): number[][] {
  const n = a.length;
  const cols = Array.from({ length: n }, (_, j) => solve(a, Array.from({ length: n }, (_, i) => (i === j ? 1 : 0))));
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => cols[j]![i]!));
}
