import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { startLocalMesh } from "../apps/cli/local-mesh.ts";
import { createClient } from "../src/platform/rpc/index.ts";
import { ConductorService, RunStatus, RoundPhase, RunSpecSchema } from "../src/gen/autodidact/v1/conductor_pb.ts";
import { conductorMembers, saveTinyBases, tinyRunSpec } from "../tests/conductor-support.ts";

const stateDir = await mkdtemp(join(tmpdir(), "cdev-"));
await saveTinyBases(join(stateDir, "models"));
await writeFile(join(stateDir, "run.json"), toJsonString(RunSpecSchema, tinyRunSpec({ name: "w", rounds: 1, proposals: 8, decisionMs: 500 })));
const members = conductorMembers({ stateDir, trainSteps: 10 });
members.find((m) => m.kind === "conductor")!.args!.push("--run-spec-file", join(stateDir, "run.json"));
const mesh = await startLocalMesh({ stateDir, members, restartPolicy: { initialDelayMs: 100, maxDelayMs: 1000, stableAfterMs: 2000 }, readyTimeoutMs: 120_000 });
const c = createClient(ConductorService, mesh.address("conductor"), { deadlineMs: 60_000 });
try {
  for await (const e of c.watchRun({ id: "w", fromSeq: 1n })) console.log(Number(e.seq), e.round, e.event.case, e.event.case === "phaseStarted" ? RoundPhase[e.event.value] : e.event.case === "status" ? RunStatus[e.event.value.status] : "");
  console.log("watch ended");
} catch (err) { console.log("watch error", err); }
c.close();
await mesh.stop();
