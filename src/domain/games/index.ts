// Self-play foundations (the AlphaZero shape): games, PUCT search, self-play records, fixed
// opponents, matches, Elo, and the arena gate with its forgetting alarm.
export type { Game, Outcome, Player, Symmetry, TokenEncoding } from "./game.js";
export { mapPolicy, opponent, parseMoves, playMoves } from "./game.js";
export type { ConnectFourOptions } from "./connect-four.js";
export { CONNECT_FOUR_TOKENS, ConnectFour, ConnectFourState, createConnectFour } from "./connect-four.js";
export { sampleDirichlet, sampleGamma } from "./dirichlet.js";
export type { Evaluation, Evaluator } from "./evaluator.js";
export { CountingEvaluator, legalSoftmax, uniformEvaluator } from "./evaluator.js";
export type { MctsOptions, ResolvedMctsOptions } from "./mcts.js";
export { resolveMctsOptions, SearchNode, SearchTree } from "./mcts.js";
export type { GameRecord, SelfPlayOptions, SelfPlayStats } from "./self-play.js";
export { selfPlay } from "./self-play.js";
export { AlphaBetaSearch, alphaBetaMove, WIN_SCORE } from "./alpha-beta.js";
export type { Agent, MctsAgentOptions } from "./agents.js";
export { alphaBetaAgent, anchorLadder, mctsAgent, mixedAgent, policyAgent, randomAgent, runSearches } from "./agents.js";
export type { MatchGame, MatchOptions, MatchResult, Tally } from "./match.js";
export { addTallies, playMatch, tallyScore } from "./match.js";
export type { EloOptions, EloRating, PairResult } from "./elo.js";
export { eloFromScore, expectedScore, fitElo } from "./elo.js";
export type { ArenaDecision, ArenaPlay, ArenaPolicy, ArenaResult, ArenaVerdict, ForgettingAlarm, ForgettingOptions, SprtSettings } from "./arena.js";
export { arenaDecision, checkArenaPolicy, DEFAULT_ARENA_POLICY, forgettingAlarms, runArena, sprtBounds, sprtLlr } from "./arena.js";
export type { TrainingExample } from "./replay.js";
export { examplesFromRecord, ReplayWindow } from "./replay.js";
export type { NetworkEvaluatorOptions, NetworkSize } from "./network.js";
export { NetworkEvaluator, policyValueConfigFor, toPolicyValueBatch } from "./network.js";
