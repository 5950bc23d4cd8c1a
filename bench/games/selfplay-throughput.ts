// Self-play throughput through the mesh against a plain single-process loop of the same search and
// model, in one run: positions searched per second.
//   plain: selfPlay() with a NetworkEvaluator in this process (one inference worker), no bus.
//   mesh:  the generator service of a local mesh (nats-server with credentials, generator and rules
//          critic processes) answering Generate with publish: every game becomes a Sample on the
//          SAMPLES stream, judged by the rules critic; timed at the client from the request to the
//          last streamed sample.
// The two alternate (plain, mesh, plain, mesh …) so load from other work on the machine hits both.
// Usage: node --import tsx bench/games/selfplay-throughput.ts [--games 128] [--simulations 64] [--reps 2] [--task connect4]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLocalMesh } from "../../apps/cli/local-mesh.js";
import { createModelWorker, initPolicyValueParams, openPolicyValueNetwork, savePolicyValueModel } from "../../src/engine/index.js";
import { getGamePack, NetworkEvaluator, policyValueConfigFor, selfPlay } from "../../src/domain/games/index.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { createClient } from "../../src/platform/rpc/index.js";

const { values } = parseArgs({
  options: {
    task: { type: "string", default: "connect4" },
    games: { type: "string", default: "128" },
    simulations: { type: "string", default: "64" },
    concurrency: { type: "string", default: "128" },
    reps: { type: "string", default: "2" },
  },
});
const games = Number(values.games);
const simulations = Number(values.simulations);
const concurrency = Number(values.concurrency);
const reps = Number(values.reps);
const pack = getGamePack(values.task!);
const config = policyValueConfigFor(pack.game, pack.network);
const params = initPolicyValueParams(config, 7);

const work = await mkdtemp(join(tmpdir(), "selfplay-bench-"));
const modelDir = join(work, "model");
await savePolicyValueModel(modelDir, { config, params, extra: { game: pack.game.name } });

const worker = createModelWorker({ name: "bench-plain" });
const network = await openPolicyValueNetwork(worker, config, params);
/** The plain loop: the same search settings the generator uses. */
const plain = async (rep: number): Promise<{ positions: number; seconds: number }> => {
  const t0 = performance.now();
  const { stats } = await selfPlay(pack.game, new NetworkEvaluator(pack.game, network), {
    games,
    mcts: { simulations, dirichletAlpha: 1, dirichletEpsilon: 0.25 },
    temperatureMoves: 8,
    concurrency: Math.min(games, concurrency),
    seed: `plain-${rep}`,
  });
  return { positions: stats.positions, seconds: (performance.now() - t0) / 1000 };
};

const stateDir = join(work, "mesh");
const mesh = await startLocalMesh({
  stateDir,
  auth: true,
  members: [
    { name: "generator", kind: "generator", args: ["--task", pack.name, "--model", modelDir, "--simulations", String(simulations), "--game-concurrency", String(concurrency), "--log-level", "warn"] },
    { name: "critic-rules", kind: "critic", args: ["--task", pack.name, "--kind", "rules", "--critic-id", "rules", "--log-level", "warn"] },
  ],
  readyTimeoutMs: 900_000,
});
const generator = createClient(GeneratorService, mesh.address("generator"), { deadlineMs: Infinity });
const viaMesh = async (rep: number): Promise<{ positions: number; seconds: number }> => {
  const t0 = performance.now();
  let positions = 0;
  for await (const s of generator.generate({ task: pack.name, count: games, publish: true, seed: BigInt(1001 + rep), idPrefix: `bench-${Date.now()}-${rep + 1}`, round: rep + 1 })) {
    positions += s.game?.moves.length ?? 0;
  }
  return { positions, seconds: (performance.now() - t0) / 1000 };
};

try {
  console.log(`${pack.name}: ${games} games × ${simulations} simulations, concurrency ${concurrency}, MLP ${config.hidden}×${config.blocks}; ${reps} alternating repetitions`);
  await plain(-1); // warm-up: JIT, the worker's first sessions
  await viaMesh(-1);
  const totals = { plain: { positions: 0, seconds: 0 }, mesh: { positions: 0, seconds: 0 } };
  for (let rep = 0; rep < reps; rep++) {
    for (const [name, fn] of [["plain", plain], ["mesh", viaMesh]] as const) {
      const r = await fn(rep);
      totals[name].positions += r.positions;
      totals[name].seconds += r.seconds;
      console.log(`${name.padEnd(5)} rep ${rep}: ${r.positions} positions in ${r.seconds.toFixed(1)} s = ${(r.positions / r.seconds).toFixed(0)} positions/s`);
    }
  }
  const p = totals.plain.positions / totals.plain.seconds;
  const m = totals.mesh.positions / totals.mesh.seconds;
  console.log(`plain ${p.toFixed(0)} positions/s, mesh ${m.toFixed(0)} positions/s: mesh/plain = ${(m / p).toFixed(2)}`);
  console.log(JSON.stringify({ bench: "selfplay-throughput", task: pack.name, games, simulations, concurrency, reps, plainPositionsPerSecond: p, meshPositionsPerSecond: m, ratio: m / p }));
} finally {
  generator.close();
  await mesh.stop();
  await network.release();
  await worker.close();
  await rm(work, { recursive: true, force: true });
}
