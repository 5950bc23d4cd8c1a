// One demo run as a client of the conductor: starts the local mesh (with its conductor), submits the
// run spec built from the demo configuration, follows the conductor's round events and prints them.
// The loop itself — proposing, judging, training, gating, choosing the next length — is the
// conductor's alone (services/conductor); every number of the returned run was read back from what
// the services recorded (the conductor's round summaries, the monitor's evaluations and round
// statistics, the registry).
import { toJsonString } from "@bufbuild/protobuf";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connectBus, type Bus } from "../../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../../src/platform/nats-auth/index.js";
import { createClient } from "../../src/platform/rpc/index.js";
import { createRegistry } from "../../src/domain/registry/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { ConductorService, RunSpecSchema, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { DecisionAudit } from "../../services/consensus/index.js";
import type { DemoRun } from "../report/types.js";
import { startLocalMesh, type LocalMesh } from "../cli/local-mesh.js";
import { lineageName, type DemoConfig } from "./config.js";
import { RunFollower } from "./follow-run.js";
import { demoMembers } from "./members.js";
import type { DemoOutput } from "./progress.js";
import { RoundResults } from "./results.js";
import { demoRunSpec, longestLength } from "./run-spec.js";
import { taskMinDifficulty } from "./demo-tasks.js";
import { printSummary } from "./table.js";
import type { RunVariant } from "./variants.js";

export { VARIANTS, selectVariants } from "./variants.js";
export type { RunVariant } from "./variants.js";
export { demoMembers } from "./members.js";

/** Options of {@link runDemo}. */
export interface RunDemoOptions {
  readonly config: DemoConfig;
  readonly variant: RunVariant;
  /** The run's state (NATS store, logs, trainer data, caches). */
  readonly stateDir: string;
  readonly out: DemoOutput;
  readonly signal?: AbortSignal;
  /** Use this NATS (JetStream on) instead of starting a nats-server. */
  readonly natsUrl?: string;
  /** Called once the monitor's dashboard is up. */
  readonly onDashboard?: (url: string) => void;
  /** Called with the run so far after every round (the CLI rewrites the report as it goes). */
  readonly onRound?: (run: DemoRun) => void | Promise<void>;
}

/** A finished run and the mesh it ran on, still up (so the dashboard stays browsable) until `stop`. */
export interface DemoRunResult {
  readonly run: DemoRun;
  readonly dashboardUrl: string | undefined;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The monitor's dashboard address, from the line it logs when the dashboard is up. */
async function dashboardAddress(stateDir: string): Promise<string | undefined> {
  for (let i = 0; i < 40; i++) {
    const log = await readFile(join(stateDir, "logs", "monitor.log"), "utf8").catch(() => "");
    const m = /"msg":"dashboard".*?"url":"([^"]+)"/.exec(log);
    if (m) return m[1];
    await sleep(250);
  }
  return undefined;
}

/** The labels regime in words, for the table and the report. */
export function labelsOf(config: DemoConfig, variant: RunVariant): string {
  return variant.labels === "all"
    ? `ABLATION validation-all: validation labels at ${taskMinDifficulty(config.recipe)}..${longestLength(config)} (beyond the anchor range)`
    : `validation labels only at ${taskMinDifficulty(config.recipe)}..${config.recipe.baseDigits} (the base range)`;
}

/**
 * Starts the mesh: its own nats-server with per-service credentials unless the user gave a NATS. The
 * conductor creates the run from its spec file at start and imports the bases from `config.baseDir`
 * (the monitor promotes them); model critics, which need a promoted model, restart until then.
 */
async function startMesh(o: RunDemoOptions, spec: RunSpec): Promise<LocalMesh> {
  const { config, variant } = o;
  const specFile = join(o.stateDir, "run-spec.json");
  await mkdir(o.stateDir, { recursive: true });
  await writeFile(specFile, toJsonString(RunSpecSchema, spec, { prettySpaces: 1 }));
  const members = demoMembers(config, variant, o.stateDir);
  members.find((m) => m.kind === "conductor")!.args!.push("--run-spec-file", specFile);
  const critics = variant.consensus ? `${config.recipe.seeds.length - 1} model critics${config.rulesCritic ? " + rules" : ""}${config.noveltyCritic ? " + novelty" : ""}` : "an accept-all critic (model critics only probe)";
  o.out.write(`starting the mesh (${variant.name}): nats-server${o.natsUrl === undefined ? " with per-service credentials" : ""}, generator, ${critics}, consensus, a trainer per lineage, monitor, conductor\n` +
      `  (the conductor imports the bases and the monitor evaluates each before the model critics can serve them: minutes)\n`);
  return startLocalMesh({
    stateDir: o.stateDir,
    ...(o.natsUrl !== undefined ? { natsUrl: o.natsUrl, auth: false } : { auth: true }),
    members,
    modelsDir: config.baseDir,
    restartPolicy: { initialDelayMs: 500, maxDelayMs: 3_000, stableAfterMs: 10_000 },
    // Services log at info into their files (the dashboard's address is read from there).
    env: { AUTODIDACT_LOG_LEVEL: "info" },
    // Model critics become ready only once the conductor imported their bases and the monitor evaluated
    // each (minutes on a loaded machine): the wait is bounded by Ctrl-C rather than a guess.
    readyTimeoutMs: 6 * 3_600_000,
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

/**
 * Runs one demo run through the conductor: mesh up, run spec submitted, events followed until the
 * run ends. A decision audit (a core subscription on the task's decisions) checks that no sample was
 * decided twice.
 */
export async function runDemo(o: RunDemoOptions): Promise<DemoRunResult> {
  const { config, variant, out, signal } = o;
  const spec = demoRunSpec(config, variant);
  const lineages = config.recipe.seeds.map(lineageName);
  const clients: { close(): void }[] = [];
  let mesh: LocalMesh | undefined;
  let bus: Bus | undefined;
  let audit: DecisionAudit | undefined;
  const stop = async (): Promise<void> => {
    for (const c of clients) c.close();
    await audit?.stop().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await mesh?.stop().catch(() => undefined);
  };
  try {
    mesh = await startMesh(o, spec);
    // The demo reads as the operator (the admin identity when the mesh has credentials): the decision audit and the candidates' records.
    const adminSeed = mesh.secrets?.seedFileOf("admin");
    bus = await connectBus({
      servers: mesh.natsUrl,
      name: `autodidact-demo-${variant.name}`,
      ...(adminSeed !== undefined ? { credentials: (await resolveNatsCredentials({ natsNkeyFile: adminSeed }))! } : {}),
    });
    audit = await DecisionAudit.start(bus, Subjects.decisions(spec.task));
    const registry = createRegistry(bus, { cacheDir: join(o.stateDir, "cache", "demo") });
    const conductor = createClient(ConductorService, mesh.address("conductor"), { deadlineMs: Infinity });
    const monitor = createClient(MonitorService, mesh.address("monitor"), { deadlineMs: 600_000 });
    clients.push(conductor, monitor);
    const dashboardUrl = await dashboardAddress(o.stateDir);
    if (dashboardUrl) o.onDashboard?.(dashboardUrl);

    const r = config.recipe;
    const labels = labelsOf(config, variant);
    out.write(`run ${spec.name} at the conductor: ${labels}; test split ${taskMinDifficulty(config.recipe)}..${longestLength(config)}\n`);
    const results = new RoundResults(monitor, registry, { task: r.task, threshold: r.frontierThreshold, from: r.frontierFrom, data: variant.data }, signal);
    const follower = new RunFollower({
      out,
      results,
      registry,
      lineages,
      lengths: Array.from({ length: longestLength(config) }, (_, i) => i + 1),
      run: { name: variant.name, description: variant.description, consensus: variant.consensus, data: variant.data, generatorLineage: lineages[0]!, stateDir: o.stateDir, labels, seed: config.seed, runId: spec.name },
      ...(o.onRound ? { onRound: o.onRound } : {}),
    });
    const run = await follower.follow(conductor.watchRun({ id: spec.name }, signal ? { signal } : {}));
    const audited = audit.report();
    out.write(`${audited.decidedTwice > 0 ? "warning: " : ""}decisions published: ${audited.samples} samples, ${audited.decidedTwice} decided more than once\n`);
    printSummary(out, run);
    return { run, dashboardUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
