/**
 * The chaos run: the real mesh (nats-server + generator, three critics, consensus, trainer, monitor
 * and the conductor as supervised processes, as `autodidact up` runs them) doing a real loop — the
 * conductor drives one run round after round — while a seeded schedule SIGKILLs random services (the
 * conductor among them) and restarts nats-server on the same port and store; afterwards every
 * invariant of ARCHITECTURE.md ("Invariants") that the streams, the registry and the trainer's files
 * can show is checked.
 * Used by `npm run bench:chaos` (bench/chaos/bench.ts) and, smaller, by tests/chaos.test.ts.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus, consumerLag, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../../src/platform/nats-auth/index.js";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../../apps/cli/local-mesh.js";
import { evaluateVotes, policyFromProto } from "../../src/domain/consensus/index.js";
import { DecisionAudit } from "../../services/consensus/index.js";
import { createRng, loadDecoder, loadModel } from "../../src/engine/index.js";
import { AutodidactError, codeName } from "../../src/platform/errors/index.js";
import { DecisionOutcome, DecisionSchema, type Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { ConductorService, RunStatus, type Run } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { SampleSchema, VerdictSchema } from "../../src/gen/autodidact/v1/sample_pb.js";
import { createRegistry, listCheckpointFiles } from "../../src/domain/registry/index.js";
import { createClient } from "../../src/platform/rpc/index.js";
import { CHAOS_RUN, checkRounds, prepareChaosRun, runEnded } from "./loop.js";
import { readStream } from "./streams.js";
import { Streams, Subjects } from "../../src/domain/topology/index.js";

/** Knobs of one chaos run; the CI test and the bench differ only in these. */
export interface ChaosOptions {
  /** Seed of the kill schedule and of the load (printed, so a failing run can be replayed). */
  seed: number;
  /** SIGKILLs of service processes during the chaos phase. */
  kills: number;
  /** nats-server restarts (SIGKILL, same port, same JetStream store) during the chaos phase. */
  natsRestarts: number;
  /** Length of the chaos phase in ms; kills and restarts are spread over it. */
  chaosMs: number;
  /** A phase of the same load without faults before the chaos phase (the bench's peer), in ms (default 0). */
  calmMs?: number;
  /** Longest wait for the mesh to catch up after the chaos phase, in ms (default 180 s). */
  settleTimeoutMs?: number;
  /** Proposals per round of the run the conductor drives (default 32). */
  proposalsPerRound?: number;
  /** Optimizer steps per training round (default 8). */
  trainSteps?: number;
  /** Keep the state dir (NATS store, logs, trainer data) even when every invariant holds. */
  keepState?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * The conductor's lease time to live (default "3s": a killed conductor's run is taken over within
   * seconds). A conductor stops driving when a renewal stalls for half of it, so on a cluster, where
   * a leader election holds writes for several seconds, it must be longer than twice an election.
   */
  leaseTtl?: string;
  /**
   * Run the mesh on NATS the caller started (e.g. the 3-node cluster of bench/chaos/cluster.ts), with
   * this many replicas, instead of a nats-server of its own (then without NATS authentication, and
   * `natsRestarts` must be 0: the caller brings its own faults through `duringChaos`).
   */
  nats?: { url: string; replicas: number };
  /** Runs alongside the chaos phase's kill schedule (the cluster bench's node kills); awaited before the mesh settles. */
  duringChaos?: (ctx: { bus: Bus; chaosMs: number; log: (line: string) => void }) => Promise<void>;
}

/** One checked invariant. */
export interface InvariantResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What a chaos run did and found. */
export interface ChaosReport {
  seed: number;
  kills: number;
  killsByService: Record<string, number>;
  natsRestarts: number;
  /** Restarts the supervisor made (after kills, and after starts that failed while NATS was down). */
  supervisorRestarts: number;
  /** Exits not caused by our SIGKILLs or the final stop, as `name: code/signal`. */
  unexpectedExits: string[];
  /** Starts that failed (exit 1, "failed to start") because nats-server was down; restarted with backoff. */
  startFailures: number;
  /** The run's status at the end (cancelled after the chaos: it ends after its current phase). */
  runStatus: string;
  /** Rounds the run finished. */
  roundsDone: number;
  /** Every round of the run exactly once per lineage (see bench/chaos/loop.ts). */
  roundsOnce: boolean;
  roundProblems: string[];
  /** Distinct samples stored on `samples.proposed.>`. */
  proposed: number;
  decided: number;
  lost: number;
  /**
   * Samples with two or more different decisions (must be 0), on the stream or published: the
   * stream drops a second decision inside its duplicate window, a core subscription sees it.
   */
  decidedTwice: number;
  /** Extra copies of the same stored decision on the stream (a re-publish after a crash; consumers dedupe by sample id). */
  decisionCopies: number;
  /** Decision publishes the harness's core subscription saw (including repeats the stream dropped). */
  decisionPublishes: number;
  /** Identical re-publishes among them. */
  republishedCopies: number;
  /** Decided samples whose publish the core subscription missed (the harness was disconnected: NATS restarts). */
  auditUnseen: number;
  /** Decisions published or stored that are not the one the ledger (consensus KV) holds for their sample (must be 0). */
  decisionsNotInLedger: number;
  /** Decisions of samples nobody proposed (must be 0). */
  decisionsWithoutSample: number;
  accepted: number;
  rejected: number;
  timeouts: number;
  /** Decisions whose stored votes are real verdicts of distinct expected critics and justify the outcome. */
  votesComplete: number;
  votesIncomplete: number;
  /** A few incomplete decisions, explained. */
  incompleteExamples: string[];
  /** (sample, critic) pairs with no verdict after the run settled (every critic judges every sample). */
  missingVerdicts: number;
  /** (sample, critic) pairs with verdicts that disagree (a critic judged twice differently). */
  conflictingVerdicts: number;
  votesPerDecision: Record<string, number>;
  intake: number;
  intakeMissing: number;
  intakeExtra: number;
  intakeDuplicateLines: number;
  journalRounds: Record<string, number>;
  /** Why rounds ended without a candidate (journal reasons). */
  roundFailures: string[];
  checkpointsRegistered: number;
  versionsAllocated: number;
  versionsContiguous: boolean;
  checkpointsLoadable: number;
  promotedVersion: number;
  promotedValid: boolean;
  trainerFoldersComplete: number;
  /** Checkpoint folders (trainer data dir or a service cache) whose files differ from the registry record. */
  trainerFoldersBroken: string[];
  /** Checkpoint folders in the services' caches that match their record. */
  cacheFoldersComplete: number;
  tempFilesLeft: string[];
  tornLines: number;
  poisoned: number;
  calmDecidedPerS: number;
  chaosDecidedPerS: number;
  settleMs: number;
  totalMs: number;
  invariants: InvariantResult[];
  stateDir: string;
}

const CRITICS = ["critic-a", "critic-b", "critic-c"] as const;
const TASK = "addition";
const LINEAGE = "main";

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

const errCode = (err: unknown): string => (err instanceof AutodidactError ? codeName(err.code) : err instanceof Error ? err.name : "unknown");
const bump = (m: Record<string, number>, k: string, by = 1): void => void (m[k] = (m[k] ?? 0) + by);

/** The mesh members of a chaos run: small models, short timeouts, everything inside `stateDir`. */
function chaosMembers(stateDir: string, trainSteps: number, runSpecFile: string, leaseTtl: string): MeshMember[] {
  const critic = (name: string, kind: string): MeshMember => ({
    name,
    kind: "critic",
    args: ["--kind", kind, "--ack-wait", "5s", "--cache-dir", join(stateDir, "cache", name), "--log-level", "warn"],
  });
  return [
    { name: "generator", kind: "generator", args: ["--difficulty", "2", "--batch-size", "8", "--cache-dir", join(stateDir, "cache", "generator"), "--log-level", "warn"] },
    critic("critic-a", "rules"),
    critic("critic-b", "verifier"),
    critic("critic-c", "rules"),
    {
      name: "trainer",
      kind: "trainer",
      args: ["--data-dir", join(stateDir, "trainer"), "--lineages", LINEAGE, "--steps", String(trainSteps), "--batch-size", "8", "--max-reuse", "1000", "--train-threads", "1", "--log-level", "warn"],
    },
    {
      name: "monitor",
      kind: "monitor",
      args: ["--cache-dir", join(stateDir, "cache", "monitor"), "--eval-limit", "4", "--eval-min-difficulty", "1", "--eval-max-difficulty", "3", "--dashboard-port", "-1", "--log-level", "warn"],
    },
    {
      name: "conductor",
      kind: "conductor",
      // A short lease: a killed conductor's run is taken over within seconds. Phases that fail while
      // NATS restarts are retried rather than failing the run.
      args: ["--run-spec-file", runSpecFile, "--lease-ttl", leaseTtl, "--poll-interval", "200ms", "--retry-delay", "500ms", "--phase-attempts", "30", "--log-level", "info"],
    },
  ];
}

/** Lines of a JSONL file: parsed ones and how many could not be parsed (torn by a crash). */
async function readJsonl<T>(path: string): Promise<{ rows: T[]; torn: number }> {
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch {
    return { rows: [], torn: 0 };
  }
  const rows: T[] = [];
  let torn = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      torn++;
    }
  }
  return { rows, torn };
}

/** Every file or folder below `dir` whose name marks it as unfinished (`.tmp-…`, `….tmp`): what a kill mid-write leaves. */
async function tempEntries(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(join(dir, sub), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const rel = sub === "" ? e.name : `${sub}/${e.name}`;
      if (e.name.startsWith(".tmp-") || e.name.endsWith(".tmp")) out.push(rel);
      else if (e.isDirectory()) await walk(rel);
    }
  };
  await walk("");
  return out;
}

interface JournalLine {
  kind: string;
  round?: number;
  plan?: { round: number };
  status?: string;
  reason?: string;
}

async function unfinishedRounds(trainerDir: string): Promise<number> {
  const { rows } = await readJsonl<JournalLine>(join(trainerDir, "rounds.jsonl"));
  const started = new Set(rows.filter((r) => r.kind === "start").map((r) => r.plan?.round));
  for (const r of rows) if (r.kind === "end") started.delete(r.round);
  return started.size;
}

/**
 * Runs one chaos run and checks the invariants. Never throws for an invariant: the report says
 * which held; it throws only when the mesh cannot be started at all.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const trainSteps = options.trainSteps ?? 8;
  const stateDir = await mkdtemp(join(tmpdir(), "autodidact-chaos-"));
  const trainerDir = join(stateDir, "trainer");
  const runSpecFile = await prepareChaosRun(stateDir, join(stateDir, "models"), {
    lineage: LINEAGE,
    task: TASK,
    proposals: options.proposalsPerRound ?? 32,
    trainSteps,
    critics: CRITICS,
    verifier: "critic-b",
  });
  const members = chaosMembers(stateDir, trainSteps, runSpecFile, options.leaseTtl ?? "3s");
  const scheduleRng = createRng(`chaos-schedule:${options.seed}`);

  const report: ChaosReport = {
    seed: options.seed, kills: 0, killsByService: {}, natsRestarts: 0, supervisorRestarts: 0, unexpectedExits: [], startFailures: 0,
    runStatus: "", roundsDone: 0, roundsOnce: false, roundProblems: [],
    proposed: 0, decided: 0, lost: 0, decidedTwice: 0, decisionCopies: 0, decisionPublishes: 0, republishedCopies: 0, auditUnseen: 0, decisionsNotInLedger: 0, decisionsWithoutSample: 0,
    accepted: 0, rejected: 0, timeouts: 0, votesComplete: 0, votesIncomplete: 0, incompleteExamples: [], missingVerdicts: 0, conflictingVerdicts: 0, votesPerDecision: {},
    intake: 0, intakeMissing: 0, intakeExtra: 0, intakeDuplicateLines: 0, journalRounds: {}, roundFailures: [],
    checkpointsRegistered: 0, versionsAllocated: 0, versionsContiguous: false, checkpointsLoadable: 0, promotedVersion: 0, promotedValid: false,
    trainerFoldersComplete: 0, trainerFoldersBroken: [], cacheFoldersComplete: 0, tempFilesLeft: [], tornLines: 0, poisoned: 0, calmDecidedPerS: 0, chaosDecidedPerS: 0,
    settleMs: 0, totalMs: 0, invariants: [], stateDir,
  };

  let nats: NatsServerProcess | undefined;
  let bus: Bus | undefined;
  let mesh: LocalMesh | undefined;
  try {
    await mkdir(join(stateDir, "cache"), { recursive: true });
    // Exits we did not cause are crashes worth reporting.
    const ourKills = new Map<number, string>();
    let stopping = false;
    // As `autodidact up` runs it: its own nats-server with generated per-service credentials, and
    // consensus in a process of its own (the only identity allowed to publish decisions).
    mesh = await startLocalMesh({
      stateDir,
      members,
      restartPolicy: { initialDelayMs: 200, maxDelayMs: 2_000, stableAfterMs: 3_000 },
      readyTimeoutMs: 180_000,
      ...(options.nats !== undefined ? { natsUrl: options.nats.url, auth: false, natsReplicas: options.nats.replicas } : {}),
    });
    nats = mesh.nats;
    const adminSeed = mesh.secrets?.seedFileOf("admin");
    const credentials = adminSeed === undefined ? undefined : await resolveNatsCredentials({ natsNkeyFile: adminSeed });
    bus = await connectBus({ servers: mesh.natsUrl, name: "chaos-harness", waitOnFirstConnect: true, maxReconnectDelayMs: 250, ...(credentials ? { credentials } : {}) });
    log(`seed ${options.seed}: nats ${mesh.natsUrl} (authenticated: ${mesh.secrets !== undefined}), state ${stateDir}`);
    const runningMesh = mesh;
    // A service that cannot start while nats-server is down exits 1 ("failed to start") and is
    // restarted with backoff, as a pod would be: counted apart from crashes.
    const failedToStart = new Set<string>();
    runningMesh.supervisor.on("output", (name, line) => {
      if (line.includes("failed to start")) failedToStart.add(name);
    });
    runningMesh.supervisor.on("exited", (name, code, signal) => {
      const pid = [...ourKills.entries()].find(([, n]) => n === name)?.[0];
      if (signal === "SIGKILL" && pid !== undefined) {
        ourKills.delete(pid);
        return;
      }
      if (code === 1 && failedToStart.delete(name)) {
        report.startFailures++;
        return;
      }
      if (!stopping) report.unexpectedExits.push(`${name}: code ${code} signal ${signal}`);
    });
    log(`mesh up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // Every decision published, including a second decision of a sample the stream would drop.
    const audit = await DecisionAudit.start(bus, Subjects.allDecisions);

    const address = (name: string): string | undefined => {
      try {
        return runningMesh.address(name);
      } catch {
        return undefined;
      }
    };
    // The load is the conductor's run: it proposes, waits for the decisions, trains and gates, round
    // after round, the whole time; the harness lets it run.
    const runLoad = (ms: number): Promise<void> => sleep(ms);

    // Calm phase (the bench's peer): the same load, no faults.
    const calmMs = options.calmMs ?? 0;
    const calmStart = Date.now();
    if (calmMs > 0) {
      log(`calm phase: ${calmMs / 1000} s of load without faults`);
      await runLoad(calmMs);
    }
    const calmEnd = Date.now();

    // The kill schedule, fixed by the seed: times uniform over the phase, victims dealt from
    // shuffled decks of all services (so every kind is hit), nats restarts one per equal slice.
    const victims = runningMesh.state().services.map((m) => m.name);
    const deck: string[] = [];
    while (deck.length < options.kills) {
      const d = [...victims];
      for (let i = d.length - 1; i > 0; i--) {
        const j = scheduleRng.int(i + 1);
        [d[i], d[j]] = [d[j]!, d[i]!];
      }
      deck.push(...d);
    }
    // The conductor is always among the victims (a short schedule might not reach it otherwise).
    if (options.kills > 0 && !deck.slice(0, options.kills).includes("conductor")) deck[scheduleRng.int(options.kills)] = "conductor";
    type Fault = { at: number; what: string };
    const faults: Fault[] = [];
    const killTimes = Array.from({ length: options.kills }, () => scheduleRng.next() * options.chaosMs).sort((a, b) => a - b);
    killTimes.forEach((at, i) => faults.push({ at, what: deck[i]! }));
    for (let i = 0; i < options.natsRestarts; i++) faults.push({ at: ((i + 0.15 + 0.7 * scheduleRng.next()) / options.natsRestarts) * options.chaosMs, what: "nats-server" });
    faults.sort((a, b) => a.at - b.at);
    log(`chaos phase: ${options.chaosMs / 1000} s, schedule ${faults.map((f) => `${(f.at / 1000).toFixed(1)}s:${f.what}`).join(" ")}`);

    const chaosStart = Date.now();
    const load = runLoad(options.chaosMs);
    const extraFaults = options.duringChaos?.({ bus, chaosMs: options.chaosMs, log });
    for (const fault of faults) {
      await sleep(Math.max(0, chaosStart + fault.at - Date.now()));
      if (fault.what === "nats-server") {
        await nats!.restart();
        report.natsRestarts++;
        log(`  ${((Date.now() - chaosStart) / 1000).toFixed(1)}s restarted nats-server`);
        continue;
      }
      // The victim may be between a crash and its restart: kill it as soon as it runs again.
      let child = runningMesh.supervisor.child(fault.what);
      for (let waited = 0; (child === undefined || child.exitCode !== null || child.pid === undefined) && waited < 30_000; waited += 100) {
        await sleep(100);
        child = runningMesh.supervisor.child(fault.what);
      }
      if (child === undefined || child.pid === undefined || child.exitCode !== null) {
        log(`  ${fault.what} did not come back within 30 s; kill skipped`);
        continue;
      }
      ourKills.set(child.pid, fault.what);
      child.kill("SIGKILL");
      report.kills++;
      bump(report.killsByService, fault.what);
      log(`  ${((Date.now() - chaosStart) / 1000).toFixed(1)}s SIGKILL ${fault.what} (pid ${child.pid})`);
    }
    await load;
    await extraFaults;
    const chaosEnd = Date.now();

    // Settle: the run cancelled and ended (after its current phase), every service back, every
    // durable drained, every sample decided, no round unfinished.
    log("settling: cancelling the run; waiting for it to end, and for every service, durable, decision and round");
    const settleStart = Date.now();
    const conductor = (): ReturnType<typeof createClient<typeof ConductorService>> | undefined => {
      const at = address("conductor");
      return at === undefined ? undefined : createClient(ConductorService, at, { deadlineMs: 10_000 });
    };
    /** The run as the conductor says it is now (undefined while the conductor is away). */
    const currentRun = async (): Promise<Run | undefined> => {
      const c = conductor();
      try {
        return await c?.getRun({ id: CHAOS_RUN });
      } catch {
        return undefined;
      } finally {
        c?.close();
      }
    };
    let cancelled = false;
    const settleDeadline = settleStart + (options.settleTimeoutMs ?? 180_000);
    const durables: Array<[string, string]> = [
      ...CRITICS.map((c): [string, string] => [Streams.Samples, `critic-${c}`]),
      [Streams.Samples, "consensus-samples"],
      [Streams.Verdicts, "consensus-verdicts"],
      [Streams.Decisions, "trainer"],
    ];
    let waitingFor = "";
    for (;;) {
      waitingFor = "";
      const down = victims.filter((v) => address(v) === undefined);
      if (down.length > 0) waitingFor = `services ${down.join(", ")}`;
      if (!cancelled && waitingFor === "") {
        const c = conductor();
        cancelled = (await c?.cancelRun({ id: CHAOS_RUN }).then(() => true, () => false)) ?? false;
        c?.close();
        if (!cancelled) waitingFor = "the conductor to cancel the run";
      }
      if (waitingFor === "") {
        const run = await currentRun();
        if (run === undefined || !runEnded(run)) waitingFor = `the run to end (${run === undefined ? "conductor away" : `${RunStatus[run.status]} round ${run.round}`})`;
      }
      if (waitingFor === "") {
        for (const [stream, durable] of durables) {
          const lag = await consumerLag(bus, stream, durable).catch(() => undefined);
          if (lag === undefined || lag.total > 0) {
            waitingFor = `durable ${durable} (${lag === undefined ? "unreadable" : `${lag.total} pending`})`;
            break;
          }
        }
      }
      if (waitingFor === "") {
        const ids = new Set((await readStream(bus, Streams.Samples)).map((m) => m.msgId ?? ""));
        for (const m of await readStream(bus, Streams.Decisions)) {
          try {
            ids.delete(fromBinary(DecisionSchema, m.data).sampleId);
          } catch {
            // counted in the checks
          }
        }
        if (ids.size > 0) waitingFor = `${ids.size} undecided samples`;
      }
      if (waitingFor === "" && (await unfinishedRounds(trainerDir)) > 0) waitingFor = "an unfinished training round";
      if (waitingFor === "" || Date.now() > settleDeadline) break;
      await sleep(1_000);
    }
    report.settleMs = Date.now() - settleStart;
    log(waitingFor === "" ? `settled in ${(report.settleMs / 1000).toFixed(1)} s` : `gave up settling after ${(report.settleMs / 1000).toFixed(1)} s: still waiting for ${waitingFor}`);

    const finalRun = await currentRun();
    stopping = true;
    report.supervisorRestarts = victims.reduce((acc, v) => acc + runningMesh.supervisor.restarts(v), 0);
    await runningMesh.supervisor.stopAll();

    // ---- checks, on what the streams, the registry and the files hold ----
    const samples = new Map<string, number>();
    for (const m of await readStream(bus, Streams.Samples)) {
      const s = fromBinary(SampleSchema, m.data);
      samples.set(s.id, (samples.get(s.id) ?? 0) + 1);
    }
    report.proposed = samples.size;
    // Every round of the run exactly once per lineage.
    if (finalRun === undefined) report.roundProblems.push("the conductor did not answer GetRun at the end");
    else {
      const rounds = await checkRounds(finalRun, createRegistry(bus, { cacheDir: join(stateDir, "cache", "rounds-check") }), trainerDir, samples);
      report.runStatus = RunStatus[finalRun.status] ?? String(finalRun.status);
      report.roundsDone = rounds.roundsDone;
      report.roundsOnce = rounds.ok;
      report.roundProblems.push(...rounds.problems);
    }

    const verdicts = new Map<string, Map<string, Set<boolean>>>();
    /** When each critic's (first) verdict on a sample was made, ms. */
    const votedAt = new Map<string, number>();
    const ms = (t: { seconds: bigint; nanos: number } | undefined): number => (t === undefined ? 0 : Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));
    for (const m of await readStream(bus, Streams.Verdicts)) {
      const v = fromBinary(VerdictSchema, m.data);
      const bySample = verdicts.get(v.sampleId) ?? new Map<string, Set<boolean>>();
      verdicts.set(v.sampleId, bySample);
      const set = bySample.get(v.criticId) ?? new Set<boolean>();
      bySample.set(v.criticId, set);
      set.add(v.approve);
      const key = `${v.sampleId}/${v.criticId}`;
      votedAt.set(key, Math.min(votedAt.get(key) ?? Number.POSITIVE_INFINITY, ms(v.createdAt)));
    }
    for (const id of samples.keys()) {
      const bySample = verdicts.get(id);
      for (const c of CRITICS) {
        const set = bySample?.get(c);
        if (set === undefined) report.missingVerdicts++;
        else if (set.size > 1) report.conflictingVerdicts++;
      }
    }

    const decisions = new Map<string, { distinct: Map<string, Decision>; copies: number }>();
    const decidedAtMs: number[] = [];
    for (const m of await readStream(bus, Streams.Decisions)) {
      const d = fromBinary(DecisionSchema, m.data);
      const entry = decisions.get(d.sampleId) ?? { distinct: new Map<string, Decision>(), copies: 0 };
      decisions.set(d.sampleId, entry);
      audit.addStored(m.data);
      const key = Buffer.from(m.data).toString("base64");
      if (entry.distinct.has(key)) entry.copies++;
      else {
        entry.distinct.set(key, d);
        if (d.decidedAt) decidedAtMs.push(Number(d.decidedAt.seconds) * 1000 + Math.floor(d.decidedAt.nanos / 1e6));
      }
    }
    await audit.stop();
    const published = audit.report(samples.keys());
    report.decisionPublishes = published.publishes;
    report.republishedCopies = published.copies;
    report.auditUnseen = published.unseen;
    report.decidedTwice = published.decidedTwice;
    report.decisionsNotInLedger = (await audit.compareWithLedger(bus)).notInLedger;
    const acceptedIds = new Set<string>();
    for (const [id, entry] of decisions) {
      report.decisionCopies += entry.copies;
      if (!samples.has(id)) report.decisionsWithoutSample++;
      const d = [...entry.distinct.values()][0]!;
      if (d.accepted) acceptedIds.add(id);
      else report.rejected++;
      if (d.outcome === DecisionOutcome.TIMEOUT) report.timeouts++;
      bump(report.votesPerDecision, String(d.votes.length));
      // Votes: real verdicts of distinct expected critics, and (unless decided by the timeout) enough to justify the outcome.
      const voters = d.votes.map((v) => v.criticId);
      let ok = new Set(voters).size === voters.length && voters.every((c) => (CRITICS as readonly string[]).includes(c));
      ok &&= d.votes.every((v) => v.sampleId === id && verdicts.get(id)?.get(v.criticId)?.has(v.approve) === true);
      ok &&= d.sample?.id === id;
      if (ok && d.outcome !== DecisionOutcome.TIMEOUT && d.policy?.spec !== undefined) {
        const ev = evaluateVotes(policyFromProto(d.policy.spec), d.votes.map((v) => ({ criticId: v.criticId, approve: v.approve, score: v.score })), { now: 0, firstVoteAt: 0 });
        ok = ev.state === "decided" && ev.accepted === d.accepted;
      }
      // A timeout may leave out only votes made after it: a vote that existed but sat in a crashed
      // process until the clock ran out is a vote the decision lost.
      if (ok && d.outcome === DecisionOutcome.TIMEOUT) {
        const decidedAt = ms(d.decidedAt);
        const lostVotes = CRITICS.filter((c) => !voters.includes(c) && (votedAt.get(`${id}/${c}`) ?? Number.POSITIVE_INFINITY) < decidedAt);
        if (lostVotes.length > 0) {
          ok = false;
          if (report.incompleteExamples.length < 5) report.incompleteExamples.push(`${id}: timeout without the earlier votes of ${lostVotes.join(", ")} (${d.outcomeDetail})`);
        }
      } else if (!ok && report.incompleteExamples.length < 5) report.incompleteExamples.push(`${id}: ${d.outcomeDetail}`);
      if (ok) report.votesComplete++;
      else report.votesIncomplete++;
    }
    report.decided = [...samples.keys()].filter((id) => decisions.has(id)).length;
    report.lost = report.proposed - report.decided;
    report.accepted = acceptedIds.size;
    const inWindow = (a: number, b: number): number => decidedAtMs.filter((t) => t >= a && t < b).length;
    report.calmDecidedPerS = calmMs > 0 ? inWindow(calmStart, calmEnd) / ((calmEnd - calmStart) / 1000) : 0;
    report.chaosDecidedPerS = inWindow(chaosStart, chaosEnd) / ((chaosEnd - chaosStart) / 1000);

    // Trainer intake: exactly the accepted set, each once.
    const intake = await readJsonl<{ sampleId: string }>(join(trainerDir, "training-set.jsonl"));
    const intakeIds = intake.rows.map((r) => r.sampleId);
    const intakeSet = new Set(intakeIds);
    report.intake = intakeSet.size;
    report.intakeDuplicateLines = intakeIds.length - intakeSet.size;
    report.intakeMissing = [...acceptedIds].filter((id) => !intakeSet.has(id)).length;
    report.intakeExtra = [...intakeSet].filter((id) => !acceptedIds.has(id)).length;
    const journal = await readJsonl<JournalLine>(join(trainerDir, "rounds.jsonl"));
    for (const e of journal.rows) {
      if (e.kind !== "end") continue;
      bump(report.journalRounds, e.status ?? "?");
      if (e.status !== "done" && report.roundFailures.length < 5) report.roundFailures.push(`round ${e.round}: ${(e.reason ?? "").slice(0, 300)}`);
    }
    report.tornLines = intake.torn + journal.torn;

    // Checkpoints: contiguous versions, each fetched, verified and loaded; a valid promoted pointer.
    const verify = createRegistry(bus, { cacheDir: join(stateDir, "verify") });
    const records = await verify.listCheckpoints(LINEAGE);
    report.checkpointsRegistered = records.length;
    report.versionsContiguous = records.every((r, i) => r.version === i + 1);
    report.versionsAllocated = await verify.lastAllocatedVersion(LINEAGE);
    const loadable = new Set<number>();
    for (const r of records) {
      try {
        const dir = await verify.materialize(LINEAGE, r.version);
        await loadModel(dir);
        await loadDecoder(dir);
        loadable.add(r.version);
      } catch (err) {
        log(`  checkpoint ${LINEAGE}@${r.version} not loadable: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    report.checkpointsLoadable = loadable.size;
    const promoted = await verify.getPromoted(LINEAGE);
    report.promotedVersion = promoted?.version ?? 0;
    const promotedRecord = records.find((r) => r.version === promoted?.version);
    report.promotedValid = promotedRecord !== undefined && promotedRecord.status === "promoted" && loadable.has(promotedRecord.version);

    // The trainer's published folders are complete (each file as the registry recorded it).
    const ckptRoot = join(trainerDir, "checkpoints", LINEAGE);
    for (const name of await readdir(ckptRoot).catch(() => [] as string[])) {
      if (!/^\d+$/.test(name)) continue;
      const record = records.find((r) => r.version === Number(name));
      const files = await listCheckpointFiles(join(ckptRoot, name)).catch(() => []);
      const same =
        record !== undefined &&
        files.length === record.files.length &&
        files.every((f, i) => f.name === record.files[i]?.name && f.sha256 === record.files[i]?.sha256);
      if (same) report.trainerFoldersComplete++;
      else report.trainerFoldersBroken.push(`${LINEAGE}/${name}`);
    }
    // So are the services' checkpoint caches (a folder under its final name is complete).
    const cacheRoot = join(stateDir, "cache");
    for (const svc of await readdir(cacheRoot).catch(() => [] as string[])) {
      for (const lineage of await readdir(join(cacheRoot, svc)).catch(() => [] as string[])) {
        for (const name of await readdir(join(cacheRoot, svc, lineage)).catch(() => [] as string[])) {
          if (!/^\d+$/.test(name)) continue;
          const record = records.find((r) => r.lineage === lineage && r.version === Number(name));
          const files = await listCheckpointFiles(join(cacheRoot, svc, lineage, name)).catch(() => []);
          const same = record !== undefined && files.length === record.files.length && files.every((f, i) => f.name === record.files[i]?.name && f.sha256 === record.files[i]?.sha256);
          if (same) report.cacheFoldersComplete++;
          else report.trainerFoldersBroken.push(`cache/${svc}/${lineage}/${name}`);
        }
      }
    }
    for (const dir of ["trainer", "cache"]) report.tempFilesLeft.push(...(await tempEntries(join(stateDir, dir))).map((p) => `${dir}/${p}`));
    report.poisoned = (await bus.jsm.streams.info(Streams.Poison)).state.messages;
  } finally {
    await bus?.close().catch(() => undefined);
    // Stops what is still running and the nats-server the mesh started (its store stays in stateDir).
    await mesh?.stop().catch(() => undefined);
  }

  const inv = (name: string, ok: boolean, detail: string): void => void report.invariants.push({ name, ok, detail });
  inv("kills and nats restarts as scheduled", report.kills >= options.kills && report.natsRestarts >= options.natsRestarts, `${report.kills}/${options.kills} kills, ${report.natsRestarts}/${options.natsRestarts} nats restarts`);
  inv("no crash we did not cause", report.unexpectedExits.length === 0, report.unexpectedExits.join("; ") || "none");
  inv("samples were proposed and decided under chaos", report.proposed > 0 && report.accepted > 0, `${report.proposed} proposed, ${report.accepted} accepted`);
  inv("the run finished rounds under chaos and ended when cancelled", report.roundsDone >= 1 && (report.runStatus === "CANCELLED" || report.runStatus === "SUCCEEDED"), `${report.roundsDone} rounds, run ${report.runStatus || "unknown"}`);
  inv(
    "every round of the run happened exactly once per lineage",
    report.roundsOnce && report.roundProblems.length === 0,
    report.roundProblems.length === 0 ? `${report.roundsDone} rounds: one candidate per lineage each, one journal round, every proposal stored once` : report.roundProblems.slice(0, 5).join("; "),
  );
  inv("nothing lost: every proposed sample decided", report.lost === 0, `${report.lost} undecided of ${report.proposed}`);
  inv(
    "nothing decided twice",
    report.decidedTwice === 0 && report.decisionsNotInLedger === 0,
    `${report.decidedTwice} samples with 2+ different decisions stored or published, ${report.decisionsNotInLedger} decisions not the ledger's ` +
      `(${report.decisionPublishes} publishes seen, ${report.auditUnseen} decided samples unseen while the harness was disconnected; ` +
      `identical re-published copies: ${report.republishedCopies} published, ${report.decisionCopies} stored)`,
  );
  inv("no decision without a proposed sample", report.decisionsWithoutSample === 0, `${report.decisionsWithoutSample}`);
  inv("every critic judged every sample once", report.missingVerdicts === 0 && report.conflictingVerdicts === 0, `${report.missingVerdicts} missing, ${report.conflictingVerdicts} conflicting`);
  inv("each decision stored with real votes that justify it", report.votesIncomplete === 0, `${report.votesComplete} complete, ${report.votesIncomplete} not (${report.timeouts} decided by timeout)${report.incompleteExamples.length > 0 ? `; e.g. ${report.incompleteExamples.join("; ")}` : ""}`);
  inv("trainer intake == accepted set", report.intakeMissing === 0 && report.intakeExtra === 0 && report.intakeDuplicateLines === 0, `intake ${report.intake}, accepted ${report.accepted}, missing ${report.intakeMissing}, extra ${report.intakeExtra}, duplicate lines ${report.intakeDuplicateLines}`);
  inv("training rounds produced checkpoints", report.checkpointsRegistered >= 2, `${report.checkpointsRegistered} registered (base included)`);
  inv("checkpoint versions contiguous", report.versionsContiguous && report.versionsAllocated === report.checkpointsRegistered, `${report.checkpointsRegistered} registered, counter at ${report.versionsAllocated}`);
  inv("every checkpoint loadable", report.checkpointsLoadable === report.checkpointsRegistered, `${report.checkpointsLoadable}/${report.checkpointsRegistered}`);
  inv("promoted pointer valid", report.promotedValid, `points at ${LINEAGE}@${report.promotedVersion}`);
  // Temp files under temp names are never read (rename publishes a folder): counted, not failed on.
  inv(
    "no half-written file visible",
    report.trainerFoldersBroken.length === 0 && report.tornLines === 0,
    `${report.trainerFoldersComplete} trainer + ${report.cacheFoldersComplete} cache checkpoint folders complete, broken [${report.trainerFoldersBroken.join(", ")}], torn lines ${report.tornLines}; temp entries left by kills (never read) [${report.tempFilesLeft.join(", ")}]`,
  );
  inv("no message given up as poison", report.poisoned === 0, `${report.poisoned} poison records`);
  report.totalMs = Date.now() - started;
  const failed = report.invariants.some((i) => !i.ok);
  if (!failed && options.keepState !== true) await rm(stateDir, { recursive: true, force: true });
  return report;
}
