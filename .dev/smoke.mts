import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalMesh } from "/work/wt/conductor/apps/cli/local-mesh.ts";
import { createClient } from "/work/wt/conductor/src/platform/rpc/index.ts";
import { ConductorService, RunStatus, RoundPhase } from "/work/wt/conductor/src/gen/autodidact/v1/conductor_pb.ts";
import { conductorMembers, saveTinyBases, tinyRunSpec } from "/work/wt/conductor/tests/conductor-support.ts";

const stateDir = await mkdtemp(join(tmpdir(), "cdev-"));
await saveTinyBases(join(stateDir, "models"));
const { toJsonString } = await import("@bufbuild/protobuf");
const { RunSpecSchema } = await import("/work/wt/conductor/src/gen/autodidact/v1/conductor_pb.ts");
const { writeFile } = await import("node:fs/promises");
await writeFile(join(stateDir, "run.json"), toJsonString(RunSpecSchema, tinyRunSpec({ name: "smoke", rounds: 2, proposals: 16, decisionMs: 1500 })));
const members = conductorMembers({ stateDir, trainSteps: 30 });
members.find((m) => m.kind === "conductor")!.args!.push("--run-spec-file", join(stateDir, "run.json"));
const t0 = Date.now();
const mesh = await startLocalMesh({ stateDir, members, restartPolicy: { initialDelayMs: 200, maxDelayMs: 2000, stableAfterMs: 3000 }, readyTimeoutMs: 120_000, onAlert: (n, l) => { if (!l.includes('authorization is off')) console.log(`[${n}] ${l.slice(0, 400)}`); } });
console.log("mesh up", (Date.now() - t0) / 1000, stateDir);
const c = createClient(ConductorService, mesh.address("conductor"));
let last = "";
for (;;) {
  const r = await c.getRun({ id: "smoke" });
  const line = `${RunStatus[r.status]} r${r.round} ${RoundPhase[r.phase]} d${r.difficulty} ${r.message}`;
  if (line !== last) { console.log(((Date.now() - t0) / 1000).toFixed(1), line); last = line; }
  if (r.status === RunStatus.SUCCEEDED || r.status === RunStatus.FAILED || r.status === RunStatus.CANCELLED) {
    for (const s of r.rounds) console.log(JSON.stringify(s, (_k, v) => typeof v === "bigint" ? Number(v) : v));
    break;
  }
  await new Promise((res) => setTimeout(res, 200));
}
c.close();
await mesh.stop();
console.log("done", (Date.now() - t0) / 1000);
