import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createConnectFour } from "./connect-four.js";
import type { Game } from "./game.js";
import type { NetworkSize } from "./network.js";

/**
 * A game task pack: what the mesh needs to run self-play for one game. A task named in a run spec
 * is either a labelled task pack (src/domain/tasks) or a game pack; services ask {@link isGameTask}
 * and take the game path (search-guided self-play, a rules critic that replays records, policy/value
 * training, the arena gate) instead of the labelled one. A game pack holds no ground truth: the
 * rules of the game are the only judge of a record, and strength is measured by play.
 */
export interface GamePack<S = unknown> {
  /** Task name (subjects, run specs, training sets): letters, digits, "-" and "_". */
  readonly name: string;
  readonly description: string;
  readonly game: Game<S>;
  /** Size of the network a base model of this game gets by default (`autodidact demo`). */
  readonly network: NetworkSize;
}

const packs = new Map<string, GamePack>();
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Adds a game pack (InvalidArgument for a bad name, AlreadyExists for a taken one). */
export function registerGamePack<S>(pack: GamePack<S>): void {
  if (!NAME.test(pack.name)) throw new AutodidactError(`game pack name ${JSON.stringify(pack.name)} must be 1-64 letters, digits, "-" or "_"`, Code.InvalidArgument);
  if (packs.has(pack.name)) throw new AutodidactError(`game pack ${pack.name} is already registered`, Code.AlreadyExists);
  packs.set(pack.name, pack as GamePack);
}

/** Whether a task name is a game (so a service takes its game path). */
export function isGameTask(task: string): boolean {
  return packs.has(task);
}

/** The game pack of a task; NotFound naming the known ones otherwise. */
export function getGamePack(task: string): GamePack {
  const p = packs.get(task);
  if (p === undefined) throw new AutodidactError(`unknown game ${JSON.stringify(task)} (known: ${[...packs.keys()].join(", ")})`, Code.NotFound);
  return p;
}

/** Names of every registered game pack. */
export function listGamePacks(): string[] {
  return [...packs.keys()];
}

registerGamePack({
  name: "connect4",
  description: "Connect Four on the standard 6x7 board: small enough to learn on 2 cores, deep enough that depth-2 search is a real opponent",
  game: createConnectFour(),
  network: { arch: "mlp", hidden: 128, blocks: 2, valueHidden: 64 },
});
registerGamePack({
  name: "connect4-5x6",
  description: "Connect Four on a 5x6 board: shorter games for quick runs and tests",
  game: createConnectFour({ rows: 5, cols: 6 }),
  network: { arch: "mlp", hidden: 64, blocks: 1, valueHidden: 32 },
});
