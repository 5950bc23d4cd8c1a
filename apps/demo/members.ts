// The processes of the demo's local mesh: a generator, the critics the run spec lists, a trainer per
// lineage (lineages train side by side), the monitor and the conductor that runs the loop (consensus is
// added by the local mesh). Flags here are where each process works (task, lineage, caches, threads);
// what the loop does with them is the run spec's (run-spec.ts).
import { join } from "node:path";
import type { MeshMember } from "../cli/local-mesh.js";
import { lineageName, type DemoConfig } from "./config.js";
import { CRITIC_IDS, longestLength, modelCriticId } from "./run-spec.js";
import type { RunVariant } from "./variants.js";

const critic = (name: string, args: string[]): MeshMember => ({ name, kind: "critic", args });

/** The critic processes: a model critic per lineage but the generator's (every variant: the curriculum probes them), vetoes or one accept-all. */
function criticMembers(config: DemoConfig, variant: RunVariant, cache: (name: string) => string[]): MeshMember[] {
  const task = config.recipe.task;
  const models = config.recipe.seeds.slice(1).map((s) => {
    const l = lineageName(s);
    return critic(`critic-${l}`, [
      ...["--task", task, "--kind", "model", "--critic-id", modelCriticId(l), "--lineage", l, "--follow-promoted", "--max-in-flight", "64"],
      ...(config.modelMinLogprob === null ? [] : ["--min-logprob", String(config.modelMinLogprob)]),
      ...cache(`critic-${l}`),
    ]);
  });
  if (!variant.consensus) return [...models, critic("critic-accept-all", ["--task", task, "--kind", "accept-all", "--critic-id", CRITIC_IDS.acceptAll])];
  return [
    ...models,
    ...(config.rulesCritic ? [critic("critic-rules", ["--task", task, "--kind", "rules", "--critic-id", CRITIC_IDS.rules])] : []),
    ...(config.noveltyCritic
      ? [critic("critic-novelty", ["--task", task, "--kind", "novelty", "--critic-id", CRITIC_IDS.novelty, "--threshold", String(config.noveltyThreshold), "--novelty-window", "4000"])]
      : []),
  ];
}

/** The mesh members of one demo run (the local mesh adds consensus). */
export function demoMembers(config: DemoConfig, variant: RunVariant, stateDir: string): MeshMember[] {
  const r = config.recipe;
  const task = r.task;
  const lineages = r.seeds.map(lineageName);
  const cache = (name: string): string[] => ["--cache-dir", join(stateDir, "cache", name)];
  return [
    { name: "generator", kind: "generator", args: ["--task", task, "--lineage", lineages[0]!, "--temperature", "0", "--batch-size", "256", "--max-lag", "100000", ...cache("generator")] },
    ...criticMembers(config, variant, cache),
    // One trainer per lineage (its own durable intake and data dir), so the lineages train side by side.
    ...lineages.map((l) => ({
      name: `trainer-${l}`,
      kind: "trainer" as const,
      args: ["--task", task, "--lineages", l, "--durable", `trainer-${l}`, "--anchor-ratio", String(r.anchorShare), "--train-threads", String(r.threads), "--data-dir", join(stateDir, `trainer-${l}`)],
    })),
    {
      name: "monitor",
      kind: "monitor",
      args: [
        ...["--task", task, "--lineage", lineages[0]!, "--eval-limit", String(r.evalSize)],
        ...["--eval-min-difficulty", "1", "--eval-max-difficulty", String(longestLength(config)), "--eval-samples", String(config.evalSamples)],
        ...cache("monitor"),
      ],
    },
    { name: "conductor", kind: "conductor", args: ["--progress-every", "500ms", "--poll-interval", "200ms", ...cache("conductor")] },
  ];
}
