import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Rng } from "../../engine/index.js";
import { sampleDirichlet } from "./dirichlet.js";
import type { Evaluation } from "./evaluator.js";
import type { Game } from "./game.js";

/** Settings of one PUCT search (AlphaZero's Monte Carlo tree search). */
export interface MctsOptions {
  /** Visits of the root before a move is chosen (a reused subtree's visits count). */
  readonly simulations: number;
  /** Exploration constant of the PUCT rule. Default 1.5. */
  readonly cPuct?: number;
  /** Dirichlet concentration of the root noise. Default 1.0 (≈ 10 / typical number of legal moves). */
  readonly dirichletAlpha?: number;
  /** Weight of the noise in the root priors; 0 (the default) = no noise (evaluation play). */
  readonly dirichletEpsilon?: number;
  /** Value assumed for a move never visited (first-play urgency). Default 0. */
  readonly fpu?: number;
  /** Keep the chosen move's subtree as the next root. Default true. */
  readonly reuseTree?: boolean;
}

/** The options with every default filled in and checked. */
export type ResolvedMctsOptions = Required<MctsOptions>;

/** Fills defaults and rejects nonsense (InvalidArgument naming the field). */
export function resolveMctsOptions(o: MctsOptions): ResolvedMctsOptions {
  const r: ResolvedMctsOptions = {
    simulations: o.simulations,
    cPuct: o.cPuct ?? 1.5,
    dirichletAlpha: o.dirichletAlpha ?? 1,
    dirichletEpsilon: o.dirichletEpsilon ?? 0,
    fpu: o.fpu ?? 0,
    reuseTree: o.reuseTree ?? true,
  };
  if (!Number.isInteger(r.simulations) || r.simulations < 1) throw new AutodidactError(`simulations must be a positive integer, got ${r.simulations}`, Code.InvalidArgument);
  if (!(r.cPuct > 0)) throw new AutodidactError(`cPuct must be > 0, got ${r.cPuct}`, Code.InvalidArgument);
  if (!(r.dirichletAlpha > 0)) throw new AutodidactError(`dirichletAlpha must be > 0, got ${r.dirichletAlpha}`, Code.InvalidArgument);
  if (!(r.dirichletEpsilon >= 0 && r.dirichletEpsilon <= 1)) throw new AutodidactError(`dirichletEpsilon must be in [0, 1], got ${r.dirichletEpsilon}`, Code.InvalidArgument);
  if (!(r.fpu >= -1 && r.fpu <= 1)) throw new AutodidactError(`fpu must be in [-1, 1], got ${r.fpu}`, Code.InvalidArgument);
  return r;
}

/**
 * One position in the tree with its edges (one per legal move). Edge statistics live in the
 * parent: visits N(s,a) and value sums W(s,a), W from the point of view of the player to move
 * here (so the parent maximizes Q = W/N over its own edges).
 */
export class SearchNode<S> {
  readonly moves: readonly number[];
  /** Priors per edge (with root noise mixed in when this node is a noisy root). */
  priors: Float64Array;
  /** Priors per edge as the evaluator gave them. */
  rawPriors: Float64Array;
  readonly visits: Int32Array;
  readonly valueSum: Float64Array;
  readonly children: (SearchNode<S> | undefined)[];
  /** N(s): 1 for the expansion plus one per simulation that passed through. */
  total = 0;
  expanded = false;
  /** For a finished game: its outcome for the player to move here; else null. */
  readonly terminalValue: number | null;

  constructor(
    readonly state: S,
    game: Game<S>,
  ) {
    this.moves = game.legalMoves(state);
    const n = this.moves.length;
    this.priors = new Float64Array(n);
    this.rawPriors = this.priors;
    this.visits = new Int32Array(n);
    this.valueSum = new Float64Array(n);
    this.children = new Array<SearchNode<S> | undefined>(n);
    this.terminalValue = game.outcomeForToMove(state);
  }

  /** Sets the priors from an evaluation's policy over the full move space (renormalized over legal moves). */
  expand(policy: ArrayLike<number>): void {
    const p = new Float64Array(this.moves.length);
    let sum = 0;
    this.moves.forEach((m, i) => {
      const v = Math.max(0, Number(policy[m] ?? 0));
      p[i] = v;
      sum += v;
    });
    if (sum > 0 && Number.isFinite(sum)) for (let i = 0; i < p.length; i++) p[i] = (p[i] as number) / sum;
    else p.fill(1 / p.length);
    this.rawPriors = p;
    this.priors = p;
    this.expanded = true;
    this.total = 1;
  }

  /** Q of edge i for the player to move here; `fpu` for an edge never visited. */
  q(i: number, fpu: number): number {
    const n = this.visits[i] as number;
    return n === 0 ? fpu : (this.valueSum[i] as number) / n;
  }
}

/** A simulation waiting for its leaf's evaluation: the edges taken from the root. */
interface Pending<S> {
  readonly path: readonly (readonly [SearchNode<S>, number])[];
  readonly leaf: SearchNode<S>;
}

/**
 * The PUCT search of one game, driven from outside so many games share evaluator calls: call
 * {@link nextLeaf} until it returns null (the root has its visits), handing each returned state to
 * an evaluator and its result to {@link deliver}. Selection picks argmax Q(s,a) + U(s,a) with
 * U = cPuct·P(s,a)·√N(s)/(1 + N(s,a)), ties to the lowest move; finished games met on the way
 * are scored exactly and need no evaluation.
 */
export class SearchTree<S> {
  root: SearchNode<S>;
  private pending: Pending<S> | null = null;
  readonly options: ResolvedMctsOptions;

  constructor(
    private readonly game: Game<S>,
    state: S,
    options: MctsOptions,
    /** Source of the root noise (only used when dirichletEpsilon > 0). */
    private readonly rng: Rng | null = null,
  ) {
    this.options = resolveMctsOptions(options);
    if (this.options.dirichletEpsilon > 0 && rng === null) throw new AutodidactError("root noise needs an rng", Code.InvalidArgument);
    this.root = this.newRoot(state);
  }

  /**
   * Runs simulations until one reaches a position the evaluator must judge (returned) or the root
   * has `simulations` visits (null: choose a move).
   */
  nextLeaf(): S | null {
    if (this.pending !== null) throw new AutodidactError("deliver the previous leaf's evaluation first", Code.FailedPrecondition);
    const root = this.root;
    if (!root.expanded) {
      this.pending = { path: [], leaf: root };
      return root.state;
    }
    while (root.total < this.options.simulations) {
      const path: (readonly [SearchNode<S>, number])[] = [];
      let node = root;
      for (;;) {
        const i = this.select(node);
        path.push([node, i]);
        let child = node.children[i];
        if (child === undefined) {
          child = new SearchNode(this.game.apply(node.state, node.moves[i] as number), this.game);
          node.children[i] = child;
        }
        if (child.terminalValue !== null) {
          child.total++;
          backup(path, child.terminalValue);
          break;
        }
        if (!child.expanded) {
          this.pending = { path, leaf: child };
          return child.state;
        }
        node = child;
      }
    }
    return null;
  }

  /** The evaluation of the state {@link nextLeaf} returned last. */
  deliver(e: Evaluation): void {
    const p = this.pending;
    if (p === null) throw new AutodidactError("no leaf is waiting for an evaluation", Code.FailedPrecondition);
    this.pending = null;
    p.leaf.expand(e.policy);
    if (p.leaf === this.root) this.addNoise(p.leaf);
    backup(p.path, Math.max(-1, Math.min(1, e.value)));
  }

  /** True when the root has its visits and a move can be chosen. */
  get done(): boolean {
    return this.pending === null && this.root.expanded && this.root.total >= this.options.simulations;
  }

  /** The root's visit distribution over the full move space: the policy training target. */
  visitDistribution(): Float32Array {
    const out = new Float32Array(this.game.numMoves);
    const r = this.root;
    let sum = 0;
    for (let i = 0; i < r.moves.length; i++) sum += r.visits[i] as number;
    r.moves.forEach((m, i) => {
      out[m] = sum > 0 ? (r.visits[i] as number) / sum : (r.rawPriors[i] as number);
    });
    return out;
  }

  /** The search's value of the root for its player to move: mean of the simulations' results. */
  rootValue(): number {
    const r = this.root;
    let n = 0;
    let w = 0;
    for (let i = 0; i < r.moves.length; i++) {
      n += r.visits[i] as number;
      w += r.valueSum[i] as number;
    }
    return n > 0 ? w / n : 0;
  }

  /**
   * The move to play: with temperature 0 the most visited (ties: higher Q, then lower move);
   * otherwise drawn with probability ∝ N(s,a)^(1/temperature).
   */
  chooseMove(temperature: number, rng: Rng | null = null): number {
    const r = this.root;
    if (r.moves.length === 0) throw new AutodidactError("no legal move at the root", Code.FailedPrecondition);
    if (temperature > 0) {
      if (rng === null) throw new AutodidactError("sampling a move needs an rng", Code.InvalidArgument);
      let maxVisits = 0;
      for (let i = 0; i < r.moves.length; i++) maxVisits = Math.max(maxVisits, r.visits[i] as number);
      if (maxVisits > 0) {
        // Normalize by the largest count before the power so high powers stay finite.
        const w = Array.from(r.visits, (v) => Math.pow(v / maxVisits, 1 / temperature));
        const total = w.reduce((a, b) => a + b, 0);
        let u = rng.next() * total;
        for (let i = 0; i < w.length; i++) {
          u -= w[i] as number;
          if (u < 0) return r.moves[i] as number;
        }
        for (let i = w.length - 1; i >= 0; i--) if ((w[i] as number) > 0) return r.moves[i] as number;
      }
    }
    let best = 0;
    for (let i = 1; i < r.moves.length; i++) {
      const dv = (r.visits[i] as number) - (r.visits[best] as number);
      if (dv > 0 || (dv === 0 && r.q(i, -2) > r.q(best, -2))) best = i;
    }
    return r.moves[best] as number;
  }

  /** Plays `move` at the root: its subtree becomes the root (when reused) with fresh noise. */
  advance(move: number): void {
    if (this.pending !== null) throw new AutodidactError("cannot move while a leaf awaits its evaluation", Code.FailedPrecondition);
    const i = this.root.moves.indexOf(move);
    if (i < 0) throw new AutodidactError(`move ${move} is not legal at the root`, Code.InvalidArgument);
    const child = this.root.children[i];
    if (this.options.reuseTree && child !== undefined && child.expanded) {
      this.root = child;
      this.addNoise(child);
    } else {
      // A finished game may become the root here (then `finished` is true and the search stops).
      this.root = child !== undefined && child.terminalValue !== null ? child : new SearchNode(this.game.apply(this.root.state, move), this.game);
    }
  }

  /** True when the root's game is over. */
  get finished(): boolean {
    return this.root.terminalValue !== null;
  }

  private newRoot(state: S): SearchNode<S> {
    const node = new SearchNode(state, this.game);
    if (node.terminalValue !== null) throw new AutodidactError("cannot search a finished game", Code.FailedPrecondition);
    return node;
  }

  /** Mixes Dirichlet noise into a root's priors: P = (1 − ε)·P_raw + ε·η, η ~ Dir(α). */
  private addNoise(node: SearchNode<S>): void {
    const eps = this.options.dirichletEpsilon;
    if (eps === 0 || this.rng === null || node.moves.length === 0) {
      node.priors = node.rawPriors;
      return;
    }
    const eta = sampleDirichlet(this.rng, this.options.dirichletAlpha, node.moves.length);
    node.priors = node.rawPriors.map((p, i) => (1 - eps) * p + eps * (eta[i] as number));
  }

  private select(node: SearchNode<S>): number {
    const { cPuct, fpu } = this.options;
    const sqrtN = Math.sqrt(node.total);
    let best = 0;
    let bestScore = -Infinity;
    for (let i = 0; i < node.moves.length; i++) {
      const n = node.visits[i] as number;
      const q = n === 0 ? fpu : (node.valueSum[i] as number) / n;
      const score = q + (cPuct * (node.priors[i] as number) * sqrtN) / (1 + n);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    return best;
  }
}

/**
 * Adds a leaf's value (for its player to move) along the path: each edge gets it from the point
 * of view of the player who chose it, flipping sign level by level.
 */
function backup<S>(path: readonly (readonly [SearchNode<S>, number])[], leafValue: number): void {
  let v = leafValue;
  for (let k = path.length - 1; k >= 0; k--) {
    const [node, i] = path[k]!;
    v = -v;
    node.valueSum[i] = (node.valueSum[i] as number) + v;
    node.visits[i] = (node.visits[i] as number) + 1;
    node.total++;
  }
}
