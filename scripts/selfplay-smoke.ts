// A quick in-process learning check of the self-play loop (the AlphaZero shape), no mesh:
// rounds of self-play with the promoted network -> training on a window of recent games (with
// mirror images) -> arena of the candidate against the promoted network -> Elo against fixed
// opponents (random, a random/alpha-beta mix, alpha-beta at depths 1, 2, 4) -> promotion.
// Prints a table per round and the self-play throughput.
// Usage: node --import tsx scripts/selfplay-smoke.ts [--set key=value]... [--out dir] [--json file]
//   e.g. --set rounds=4 --set gamesPerRound=100 --set rows=5 --set cols=6
import { writeFile } from "node:fs/promises";
import {
  anchorLadder,
  createConnectFour,
  DEFAULT_ARENA_POLICY,
  fitElo,
  forgettingAlarms,
  mctsAgent,
  NetworkEvaluator,
  playMatch,
  policyAgent,
  policyValueConfigFor,
  ReplayWindow,
  runArena,
  selfPlay,
  tallyScore,
  toPolicyValueBatch,
  type Agent,
  type ArenaPolicy,
  type ConnectFourState,
  type PairResult,
  type Tally,
} from "../src/domain/games/index.js";
import {
  createModelWorker,
  createPolicyValueTrainer,
  createRng,
  initPolicyValueParams,
  openPolicyValueNetwork,
  policyValueParameterCount,
  savePolicyValueModel,
  type Parameters,
  type PolicyValueConfig,
  type PolicyValueNetwork,
  type SessionHost,
} from "../src/engine/index.js";

/** Every knob of the run (override with --set key=value). */
const defaults = {
  seed: 1,
  rows: 6,
  cols: 7,
  arch: "mlp" as "mlp" | "conv",
  hidden: 128,
  blocks: 2,
  valueHidden: 64,
  rounds: 6,
  /** Stop starting rounds after this many minutes (0 = no limit). */
  minutes: 0,
  gamesPerRound: 200,
  simulations: 64,
  temperatureMoves: 8,
  dirichletAlpha: 1,
  dirichletEpsilon: 0.25,
  concurrency: 128,
  windowGames: 1200,
  stepsPerRound: 150,
  batchSize: 256,
  lr: 2e-3,
  weightDecay: 1e-2,
  arenaRule: "threshold" as "threshold" | "sprt",
  arenaGames: 40,
  arenaSimulations: 64,
  evalGames: 20,
  evalSimulations: 64,
  /** Evaluate candidates against the anchors every this many rounds (and the last round). */
  evalEvery: 1,
  calibrationGames: 40,
  trainerThreads: 2,
};
type Config = typeof defaults;

function parseArgs(argv: readonly string[]): { config: Config; out?: string; json?: string } {
  const config: Record<string, unknown> = { ...defaults };
  let out: string | undefined;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--out") out = argv[++i];
    else if (a === "--json") json = argv[++i];
    else if (a === "--set") {
      const [k, v] = (argv[++i] ?? "").split("=");
      if (k === undefined || v === undefined || !(k in defaults)) throw new Error(`unknown setting "${argv[i]}" (known: ${Object.keys(defaults).join(", ")})`);
      config[k] = typeof defaults[k as keyof Config] === "number" ? Number(v) : v;
    } else throw new Error(`unknown argument ${a}`);
  }
  return { config: config as Config, ...(out !== undefined ? { out } : {}), ...(json !== undefined ? { json } : {}) };
}

const { config: cfg, out, json } = parseArgs(process.argv.slice(2));
const game = createConnectFour({ rows: cfg.rows, cols: cfg.cols });
const netConfig = policyValueConfigFor(game, { arch: cfg.arch, hidden: cfg.hidden, blocks: cfg.blocks, valueHidden: cfg.valueHidden });
const mcts = (simulations: number) => ({ simulations, dirichletAlpha: cfg.dirichletAlpha });
const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0)}s`;

/** A network opened in the inference worker, with the agents built on it. */
interface Model {
  readonly name: string;
  readonly params: Parameters;
  readonly net: PolicyValueNetwork;
  readonly evaluator: NetworkEvaluator<ConnectFourState>;
}

async function openModel(host: SessionHost, name: string, params: Parameters, config: PolicyValueConfig): Promise<Model> {
  const net = await openPolicyValueNetwork(host, config, params);
  return { name, params, net, evaluator: new NetworkEvaluator(game, net) };
}

/** Plays every pair of anchors once and fits their ratings with random pinned at 0 (then fixed for the run). */
async function calibrateAnchors(anchors: readonly Agent<ConnectFourState>[]): Promise<Record<string, number>> {
  const results: PairResult[] = [];
  for (let i = 0; i < anchors.length; i++) {
    for (let j = i + 1; j < anchors.length; j++) {
      const r = await playMatch(game, anchors[j]!, anchors[i]!, { games: cfg.calibrationGames, seed: `calibrate-${i}-${j}` });
      results.push({ a: r.a, b: r.b, wins: r.wins, draws: r.draws, losses: r.losses });
    }
  }
  const fit = fitElo(results, { fixed: { random: 0 } });
  console.log("anchor ladder (random pinned at 0, " + cfg.calibrationGames + " games per pair):");
  for (const r of fit) console.log(`  ${r.name.padEnd(18)} ${r.elo.toFixed(0).padStart(5)} ± ${r.stderr.toFixed(0)}`);
  return Object.fromEntries(fit.map((r) => [r.name, r.elo]));
}

/** A model's search player against every anchor: tallies, and its Elo with the anchors fixed. */
async function evaluate(model: Model, anchors: readonly Agent<ConnectFourState>[], ratings: Record<string, number>, round: number) {
  const player = mctsAgent(game, model.evaluator, model.name, { mcts: mcts(cfg.evalSimulations) });
  const tallies: Record<string, Tally> = {};
  const results: PairResult[] = [];
  for (const anchor of anchors) {
    const r = await playMatch(game, player, anchor, { games: cfg.evalGames, seed: `eval-${round}-${anchor.name}` });
    tallies[anchor.name] = r;
    results.push({ a: model.name, b: anchor.name, wins: r.wins, draws: r.draws, losses: r.losses });
  }
  const fit = fitElo(results, { fixed: ratings }).find((r) => r.name === model.name)!;
  // The network alone (no search), against random play.
  const raw = await playMatch(game, policyAgent(game, model.evaluator, `${model.name}-policy`), anchors[0]!, { games: cfg.evalGames, seed: `raw-${round}` });
  return { tallies, elo: fit.elo, stderr: fit.stderr, rawVsRandom: raw.score };
}

const pct = (t: Tally | undefined): string => (t === undefined ? "-" : `${(100 * tallyScore(t).score).toFixed(0)}%`);

async function main(): Promise<void> {
  console.log(`game ${game.name}; ${cfg.arch} network ${netConfig.hidden}x${netConfig.blocks} blocks (${policyValueParameterCount(netConfig)} parameters); ` + JSON.stringify(cfg));
  const inference = createModelWorker({ name: "selfplay-inference" });
  const trainer = await createPolicyValueTrainer({
    config: netConfig,
    weights: initPolicyValueParams(netConfig, cfg.seed),
    optimizer: { lr: cfg.lr, weightDecay: cfg.weightDecay, maxGradNorm: 5 },
    batchSize: cfg.batchSize,
    threads: cfg.trainerThreads,
  });
  const anchors = anchorLadder(game, cfg.seed);
  const ratings = await calibrateAnchors(anchors);
  const arenaPolicy: ArenaPolicy = { ...DEFAULT_ARENA_POLICY, rule: cfg.arenaRule, maxGames: cfg.arenaGames, play: { mode: "search", simulations: cfg.arenaSimulations } };
  const window = new ReplayWindow(game, cfg.windowGames);
  const rng = createRng(`smoke-${cfg.seed}`);
  let promoted = await openModel(inference, "model-0", await trainer.getWeights(), netConfig);
  let promotedEval = await evaluate(promoted, anchors, ratings, 0);
  const rows: Record<string, unknown>[] = [];
  const row = (r: Record<string, unknown>): void => {
    rows.push(r);
    console.log(Object.entries(r).map(([k, v]) => `${k}=${v}`).join("  "));
  };
  row({ round: 0, promoted: promoted.name, elo: promotedEval.elo.toFixed(0), vsRandom: pct(promotedEval.tallies["random"]), vsAb1: pct(promotedEval.tallies["alphabeta-1"]), vsAb2: pct(promotedEval.tallies["alphabeta-2"]), vsAb4: pct(promotedEval.tallies["alphabeta-4"]), policyVsRandom: `${(100 * promotedEval.rawVsRandom).toFixed(0)}%`, t: elapsed() });
  const loopStart = Date.now();
  for (let round = 1; round <= cfg.rounds; round++) {
    // With a time budget, this is the last round when another one would not fit after it.
    const perRound = round > 1 ? (Date.now() - loopStart) / (round - 1) : 0;
    const last = round === cfg.rounds || (cfg.minutes > 0 && round > 1 && Date.now() - started + 2 * perRound > cfg.minutes * 60_000);
    const sp = await selfPlay(game, promoted.evaluator, {
      games: cfg.gamesPerRound,
      mcts: { ...mcts(cfg.simulations), dirichletEpsilon: cfg.dirichletEpsilon },
      temperatureMoves: cfg.temperatureMoves,
      concurrency: cfg.concurrency,
      seed: `selfplay-${cfg.seed}-${round}`,
    });
    window.add(sp.records);
    const trainStart = Date.now();
    let losses = { policy: 0, value: 0 };
    for (let s = 0; s < cfg.stepsPerRound; s++) {
      const r = await trainer.step(toPolicyValueBatch(window.sample(rng, cfg.batchSize)));
      losses = { policy: losses.policy + r.policyLoss / cfg.stepsPerRound, value: losses.value + r.valueLoss / cfg.stepsPerRound };
    }
    const trainSeconds = (Date.now() - trainStart) / 1000;
    const candidate = await openModel(inference, `model-${round}`, await trainer.getWeights(), netConfig);
    const arenaStart = Date.now();
    const arena = await runArena(
      game,
      mctsAgent(game, candidate.evaluator, candidate.name, { mcts: mcts(cfg.arenaSimulations) }),
      mctsAgent(game, promoted.evaluator, promoted.name, { mcts: mcts(cfg.arenaSimulations) }),
      arenaPolicy,
      `arena-${round}`,
    );
    const arenaSeconds = (Date.now() - arenaStart) / 1000;
    const evalStart = Date.now();
    const candEval = round % cfg.evalEvery === 0 || last ? await evaluate(candidate, anchors, ratings, round) : null;
    const evalSeconds = (Date.now() - evalStart) / 1000;
    const alarms = candEval === null ? [] : forgettingAlarms(arena.tally, candEval.tallies, promotedEval.tallies);
    const accepted = arena.decision.verdict === "accept";
    const outcomes = sp.records.map((r) => r.outcome);
    row({
      round,
      games: sp.stats.games,
      plies: (sp.stats.positions / sp.stats.games).toFixed(1),
      firstWins: `${((100 * outcomes.filter((o) => o === 1).length) / outcomes.length).toFixed(0)}%`,
      "pos/s": sp.stats.positionsPerSecond.toFixed(0),
      "evals/s": sp.stats.evaluationsPerSecond.toFixed(0),
      selfplay: `${sp.stats.seconds.toFixed(0)}s`,
      window: window.positions,
      policyLoss: losses.policy.toFixed(3),
      valueLoss: losses.value.toFixed(3),
      train: `${trainSeconds.toFixed(0)}s`,
      arena: `${arena.tally.wins}-${arena.tally.draws}-${arena.tally.losses}`,
      arenaScore: `${(100 * arena.decision.score).toFixed(0)}%`,
      verdict: arena.decision.verdict,
      arenaTime: `${arenaSeconds.toFixed(0)}s`,
      elo: candEval === null ? "-" : `${candEval.elo.toFixed(0)}±${candEval.stderr.toFixed(0)}`,
      vsRandom: pct(candEval?.tallies["random"]),
      vsMix: pct(candEval?.tallies["alphabeta-1-half"]),
      vsAb1: pct(candEval?.tallies["alphabeta-1"]),
      vsAb2: pct(candEval?.tallies["alphabeta-2"]),
      vsAb4: pct(candEval?.tallies["alphabeta-4"]),
      policyVsRandom: candEval === null ? "-" : `${(100 * candEval.rawVsRandom).toFixed(0)}%`,
      evalTime: `${evalSeconds.toFixed(0)}s`,
      alarms: alarms.map((a) => a.opponent).join(",") || "-",
      promoted: accepted ? candidate.name : promoted.name,
      t: elapsed(),
    });
    if (accepted) {
      await promoted.net.release();
      promoted = candidate;
      // Without an evaluation this round the alarm compares against the last one measured.
      if (candEval !== null) promotedEval = candEval;
    } else await candidate.net.release();
    if (last) break;
  }
  if (out !== undefined) {
    await savePolicyValueModel(out, { config: netConfig, params: promoted.params, extra: { game: game.name, name: promoted.name }, metadata: { name: promoted.name } });
    console.log(`saved ${promoted.name} to ${out}`);
  }
  if (json !== undefined) await writeFile(json, JSON.stringify({ config: cfg, ratings, rows }, null, 2));
  console.log(`done in ${elapsed()}`);
  await promoted.net.release();
  await trainer.close();
  await inference.close();
}

await main();
