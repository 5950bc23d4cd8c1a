// The conductor SIGKILLed at any moment: a real mesh (nats-server with per-service credentials, every
// service its own supervised process, tiny models) runs one run of five rounds, and the conductor is
// killed mid-propose, mid-judge, mid-train and mid-gate (one kill point per round, triggered by what
// the mesh does, not by timers); the supervisor restarts it and it takes the run over once the lease
// of the killed one expired. Afterwards, from what the streams, the registry and the trainer's journal
// hold: the run succeeded with each round exactly once per lineage (one candidate per lineage per
// round, one StartRound round per lineage in the journal), every proposal stored once and decided
// once (a DecisionAudit on a core subscription sees every publish), and the run's events numbered
// without a gap (a watcher lost nothing across the kills).
import { toJsonString } from "@bufbuild/protobuf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMesh, type LocalMesh } from "../apps/cli/local-mesh.js";
import { connectBus, type Bus } from "../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../src/platform/nats-auth/index.js";
import { createClient } from "../src/platform/rpc/index.js";
import { ConductorService, RoundPhase, RunSpecSchema, RunStatus, type RunEvent } from "../src/gen/autodidact/v1/conductor_pb.js";
import { DecisionSchema } from "../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { fromBinary } from "@bufbuild/protobuf";
import { DecisionAudit } from "../services/consensus/index.js";
import { createRegistry } from "../src/domain/registry/index.js";
import { Subjects } from "../src/domain/topology/index.js";
import { conductorMembers, LINEAGES, readJournal, saveTinyBases, startsPerRoundLineage, storedSamplesAndDecisions, tinyRunSpec } from "./conductor-support.js";

const RUN = "crash";
const ROUNDS = 5;
const PROPOSALS = 32;
/** Where the conductor is killed, by the run's round index (0-based): the last round runs undisturbed. */
const KILLS: readonly RoundPhase[] = [RoundPhase.PROPOSE, RoundPhase.JUDGE, RoundPhase.TRAIN, RoundPhase.GATE];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("conductor crash safety", () => {
  let stateDir: string;
  let mesh: LocalMesh | undefined;
  let bus: Bus | undefined;
  let audit: DecisionAudit | undefined;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "conductor-crash-"));
    await saveTinyBases(join(stateDir, "models"));
    await writeFile(join(stateDir, "run.json"), toJsonString(RunSpecSchema, tinyRunSpec({ name: RUN, rounds: ROUNDS, proposals: PROPOSALS, decisionMs: 1_200 })));
    const members = conductorMembers({ stateDir, trainSteps: 40 });
    members.find((m) => m.kind === "conductor")!.args!.push("--run-spec-file", join(stateDir, "run.json"));
    mesh = await startLocalMesh({
      stateDir,
      members,
      restartPolicy: { initialDelayMs: 100, maxDelayMs: 1_000, stableAfterMs: 2_000 },
      readyTimeoutMs: 120_000,
      // Every decision published from the start, seen on a core subscription of the admin identity.
      beforeServices: async (admin) => {
        const credentials = await resolveNatsCredentials({ natsNkeyFile: join(stateDir, "secrets", "admin.nk") });
        bus = await connectBus({ servers: `nats://${admin.nc.getServer()}`, name: "conductor-crash-test", ...(credentials ? { credentials } : {}) });
        audit = await DecisionAudit.start(bus, Subjects.allDecisions);
      },
    });
  }, 180_000);

  afterAll(async () => {
    await audit?.stop();
    await bus?.close();
    await mesh?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("SIGKILLed mid-propose, mid-judge, mid-train and mid-gate, the run completes with every round exactly once per lineage", async () => {
    const m = mesh!;
    const admin = bus!;
    const prefixOf = (round: number): string => `${RUN}-r${round}-`;
    let phase = { round: 0, phase: RoundPhase.UNSPECIFIED };
    let firstRound = 0;
    const kills: { round: number; phase: RoundPhase; detail: string }[] = [];
    let killing: Promise<void> | undefined;
    const kill = (round: number, at: RoundPhase, detail: string): void => {
      const child = m.supervisor.child("conductor");
      if (child === undefined || child.exitCode !== null || killing !== undefined) return;
      kills.push({ round, phase: at, detail });
      child.kill("SIGKILL");
      killing = (async () => {
        // Wait for the supervisor's restart before the next kill point may fire.
        while (m.supervisor.child("conductor") === child || m.supervisor.child("conductor")?.exitCode !== null) await sleep(50);
        killing = undefined;
      })();
    };
    const planned = (round: number): RoundPhase | undefined => (firstRound === 0 ? undefined : KILLS[round - firstRound]);
    const killedIn = (round: number): boolean => kills.some((k) => k.round === round);

    // Kill triggers on what the mesh does: the round's first proposal, its first decision.
    const subs = [
      admin.nc.subscribe(Subjects.proposed("addition"), {
        callback: (_err, msg) => {
          const s = fromBinary(SampleSchema, msg.data);
          // A proposal of the round exists only while the conductor's Generate runs: mid-propose.
          if (planned(s.round) === RoundPhase.PROPOSE && !killedIn(s.round) && s.id.startsWith(prefixOf(s.round))) kill(s.round, RoundPhase.PROPOSE, `after proposal ${s.id}`);
        },
      }),
      admin.nc.subscribe(Subjects.decisions("addition"), {
        callback: (_err, msg) => {
          const d = fromBinary(DecisionSchema, msg.data);
          const round = d.sample?.round ?? 0;
          if (planned(round) === RoundPhase.JUDGE && !killedIn(round) && phase.round === round && phase.phase === RoundPhase.JUDGE) kill(round, RoundPhase.JUDGE, `after decision of ${d.sampleId}`);
        },
      }),
    ];

    // Follows the run's events across the kills (same address: the restarted conductor keeps its port).
    const seqs: bigint[] = [];
    const events: RunEvent[] = [];
    const onEvent = async (e: RunEvent): Promise<void> => {
      seqs.push(e.seq);
      events.push(e);
      if (e.event.case === "phaseStarted") phase = { round: e.round, phase: e.event.value };
      if (e.event.case === "status" && e.event.value.firstRound > 0) firstRound = e.event.value.firstRound;
      if (firstRound === 0 && e.round > 0) firstRound = e.round;
      if (e.event.case !== "phaseStarted" || planned(e.round) !== e.event.value || killedIn(e.round)) return;
      if (e.event.value === RoundPhase.GATE) kill(e.round, RoundPhase.GATE, "at the start of the gate");
      if (e.event.value === RoundPhase.TRAIN) {
        // Once the trainer journaled the round: StartRound was called and runs.
        for (let i = 0; i < 200 && !killedIn(e.round); i++) {
          if (startsPerRoundLineage(await readJournal(join(stateDir, "trainer"))).has(`${e.round}/${LINEAGES[0]}`)) kill(e.round, RoundPhase.TRAIN, "while the trainer trains the round");
          else await sleep(25);
        }
      }
    };
    const client = createClient(ConductorService, m.address("conductor"), { deadlineMs: Infinity });
    const deadline = Date.now() + 150_000;
    let ended = false;
    while (!ended && Date.now() < deadline) {
      try {
        for await (const e of client.watchRun({ id: RUN, fromSeq: (seqs[seqs.length - 1] ?? 0n) + 1n })) {
          await onEvent(e);
          if (e.event.case === "status" && e.event.value.status !== RunStatus.RUNNING && e.event.value.status !== RunStatus.PENDING) ended = true;
        }
        ended = true;
      } catch {
        await sleep(200); // the conductor was killed: watch the restarted one from where the events stopped
      }
    }
    for (const s of subs) s.unsubscribe();
    client.close();

    const conductor = createClient(ConductorService, m.address("conductor"));
    const run = await conductor.getRun({ id: RUN });
    conductor.close();
    const summary = `kills: ${kills.map((k) => `r${k.round} ${RoundPhase[k.phase]} (${k.detail})`).join("; ")}; run ${RunStatus[run.status]} ${run.message}`;
    console.log(summary);
    expect(run.status, summary).toBe(RunStatus.SUCCEEDED);

    // Each kill landed in its planned phase of its planned round.
    expect(kills.map((k) => [k.round - run.firstRound, k.phase])).toEqual(KILLS.map((p, i) => [i, p]));
    expect(m.supervisor.restarts("conductor")).toBeGreaterThanOrEqual(KILLS.length);

    // Every round once, in order; every proposal decided and accepted (the accept-all panel).
    const rounds = run.rounds.map((r) => r.round);
    expect(rounds).toEqual(Array.from({ length: ROUNDS }, (_, i) => run.firstRound + i));
    for (const r of run.rounds) expect([r.proposed, r.decided, r.accepted], `round ${r.round}`).toEqual([BigInt(PROPOSALS), BigInt(PROPOSALS), BigInt(PROPOSALS)]);

    // One candidate per lineage per round in the registry, contiguous versions, and one StartRound round
    // per lineage in the trainer's journal.
    const registry = createRegistry(admin, { cacheDir: join(stateDir, "cache", "test") });
    for (const lineage of LINEAGES) {
      const records = await registry.listCheckpoints(lineage);
      expect(records.map((r) => r.version)).toEqual(Array.from({ length: ROUNDS + 1 }, (_, i) => i + 1));
      expect(await registry.lastAllocatedVersion(lineage)).toBe(ROUNDS + 1);
      expect(records.slice(1).map((r) => r.round)).toEqual(rounds);
      for (const r of run.rounds) expect(r.lineages.find((l) => l.lineage === lineage)?.candidateVersion, `${lineage} round ${r.round}`).toBe(BigInt(r.round - run.firstRound + 2));
    }
    const starts = startsPerRoundLineage(await readJournal(join(stateDir, "trainer")));
    expect(Object.fromEntries(starts)).toEqual(Object.fromEntries(rounds.flatMap((r) => LINEAGES.map((l) => [`${r}/${l}`, 1]))));

    // Every proposal stored once and decided once.
    const { samples, decisions } = await storedSamplesAndDecisions(admin);
    for (const r of rounds) {
      const ids = [...samples.keys()].filter((id) => id.startsWith(prefixOf(r))).sort();
      expect(ids, `round ${r}`).toEqual(Array.from({ length: PROPOSALS }, (_, i) => `${prefixOf(r)}${i}`).sort());
      for (const id of ids) {
        expect(samples.get(id), id).toBe(1);
        const distinct = new Set(decisions.get(id)?.map((d) => `${d.deciderId}:${d.decidedAt?.seconds}:${d.decidedAt?.nanos}`));
        expect(distinct.size, `${id} decided once`).toBe(1);
      }
    }
    const published = audit!.report([...samples.keys()]);
    expect(published.decidedTwice).toBe(0);
    expect(published.unseen).toBe(0);
    expect(published.samples).toBe(ROUNDS * PROPOSALS);

    // The events: numbered 1..N without a gap or a repeat, one round_done per round.
    expect(seqs).toEqual(Array.from({ length: Number(run.lastEventSeq) }, (_, i) => BigInt(i + 1)));
    expect(events.filter((e) => e.event.case === "roundDone").map((e) => e.round)).toEqual(rounds);
  }, 240_000);
});
