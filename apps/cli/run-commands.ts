// `autodidact run create -f <spec> | get | list | watch | pause | resume | cancel <id>`: runs of the
// self-improvement loop from a terminal, over the conductor's gRPC API.
import { toJsonString } from "@bufbuild/protobuf";
import { ConductorService, RoundPhase, RunSchema, RunStatus, type Run, type RunEvent } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { clientSecurityFromOptions } from "../../src/platform/auth/index.js";
import { clientSecurityOptions, defineOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createClient, type RpcClient } from "../../src/platform/rpc/index.js";
import { readRunSpecFile } from "../../services/conductor/index.js";
import { defaultStateDir, readMeshState } from "./mesh-state.js";
import { formatTable } from "./table.js";

/** Flags every command talking to the conductor takes. */
export const conductorClientOptions = {
  conductor: { type: "string", help: "gRPC address of the conductor (default: the local mesh's)", env: "AUTODIDACT_CONDUCTOR", placeholder: "<host:port>" },
  stateDir: { type: "string", help: "folder of the local mesh state", env: "AUTODIDACT_STATE_DIR" },
  ...clientSecurityOptions,
} as const;

const options = defineOptions({
  ...conductorClientOptions,
  file: { type: "string", help: "run create: the run spec (YAML or JSON)", placeholder: "<file>" },
  fromSeq: { type: "int", help: "run watch: the first event to show (0 = from the start)", default: 0, min: 0 },
  json: { type: "bool", help: "print JSON instead of a table" },
});

const SUBCOMMANDS = ["create", "get", "list", "watch", "pause", "resume", "cancel"] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

/** The conductor's address: the flag, else the local mesh's conductor. */
export async function conductorAddress(explicit: string | undefined, stateDir: string | undefined): Promise<string> {
  if (explicit) return explicit;
  const dir = stateDir ?? defaultStateDir();
  const entry = (await readMeshState(dir)).services.find((s) => s.kind === "conductor");
  if (!entry) throw new AutodidactError(`no conductor of the local mesh in ${dir}: start one with \`autodidact up\` or pass --conductor`, Code.Unavailable);
  return entry.address;
}

const status = (s: RunStatus): string => RunStatus[s]?.toLowerCase() ?? String(s);
const phase = (p: RoundPhase): string => RoundPhase[p]?.toLowerCase() ?? String(p);
const pct = (x: number): string => `${Math.round(100 * x)}%`;

/** One line per run (list). */
function runRow(r: Run): (string | number)[] {
  const where = r.status === RunStatus.RUNNING || r.status === RunStatus.PAUSED || r.status === RunStatus.FAILED ? `round ${r.round} ${phase(r.phase)}` : "-";
  return [r.id, r.spec?.task ?? "", status(r.status) + (r.requestedStatus !== RunStatus.UNSPECIFIED ? ` (${status(r.requestedStatus)} next)` : ""), where, r.difficulty, r.rounds.length, r.message.slice(0, 80)];
}

/** A run with its finished rounds (get). */
function describeRun(r: Run): string {
  const head = `run ${r.id} (${r.spec?.task}): ${status(r.status)}${r.round > 0 ? `, round ${r.round} ${phase(r.phase)} at difficulty ${r.difficulty}` : ""}${r.driver ? `, driven by ${r.driver}` : ""}\n${r.message ? `${r.message}\n` : ""}`;
  if (r.rounds.length === 0) return head;
  const rows = r.rounds.map((s) => [
    s.round,
    s.difficulty,
    `${Number(s.accepted)}/${Number(s.proposed)}`,
    s.lineages.map((l) => `${l.lineage}:${l.status}${l.candidateVersion > 0n ? `@${l.candidateVersion}` : ""}`).join(" "),
    s.probes.map((p) => `${p.difficulty}:${pct(p.agreement)}`).join(" ") || "-",
    s.nextDifficulty,
    `${s.seconds.toFixed(0)}s`,
  ]);
  return `${head}\n${formatTable(["round", "difficulty", "accepted", "lineages", "agreement", "next", "time"], rows)}\n`;
}

/** One event as a line (watch). */
export function eventLine(e: RunEvent): string {
  const at = `[${e.seq}] round ${e.round}`;
  switch (e.event.case) {
    case "status":
      return `${at} ${status(e.event.value.status)}${e.event.value.message ? `: ${e.event.value.message}` : ""}`;
    case "phaseStarted":
      return `${at} ${phase(e.event.value)}`;
    case "progress": {
      const p = e.event.value;
      return `${at}   ${phase(p.phase)} ${p.total > 0n ? `${p.done}/${p.total} ` : ""}${p.detail}`;
    }
    case "roundDone": {
      const s = e.event.value;
      const lineages = s.lineages.map((l) => `${l.lineage} ${l.status}${l.candidateVersion > 0n ? ` v${l.candidateVersion}` : ""}`).join(", ");
      const probes = s.probes.map((p) => `${p.difficulty}:${pct(p.agreement)}`).join(" ");
      return `${at} done: difficulty ${s.difficulty}, ${s.accepted}/${s.proposed} accepted, ${lineages}${probes ? `, agreement ${probes}` : ""} → next ${s.nextDifficulty} (${s.seconds.toFixed(0)} s)`;
    }
    default:
      return `${at} (unknown event)`;
  }
}

async function runSubcommand(client: RpcClient<typeof ConductorService>, sub: Subcommand, id: string | undefined, v: { file?: string | undefined; fromSeq: number; json: boolean }, out: (s: string) => void): Promise<number> {
  const show = (r: Run): void => out(v.json ? `${toJsonString(RunSchema, r)}\n` : describeRun(r));
  const needId = (): string => {
    if (id === undefined || id === "") throw new AutodidactError(`usage: autodidact run ${sub} <id>`, Code.InvalidArgument);
    return id;
  };
  switch (sub) {
    case "create": {
      if (v.file === undefined) throw new AutodidactError("usage: autodidact run create -f <run.yaml|run.json>", Code.InvalidArgument);
      show(await client.createRun({ spec: await readRunSpecFile(v.file) }));
      return 0;
    }
    case "get":
      show(await client.getRun({ id: needId() }));
      return 0;
    case "list": {
      const runs = (await client.listRuns({})).runs;
      if (v.json) out(`${JSON.stringify(runs.map((r) => JSON.parse(toJsonString(RunSchema, r)) as unknown))}\n`);
      else out(`${formatTable(["run", "task", "status", "where", "difficulty", "rounds", "message"], runs.map(runRow))}\n`);
      return 0;
    }
    case "watch": {
      let last: RunEvent | undefined;
      for await (const e of client.watchRun({ id: needId(), fromSeq: BigInt(v.fromSeq) })) {
        out(v.json ? `${JSON.stringify({ seq: Number(e.seq), round: e.round, event: e.event.case })}\n` : `${eventLine(e)}\n`);
        last = e;
      }
      return last?.event.case === "status" && last.event.value.status === RunStatus.FAILED ? 1 : 0;
    }
    case "pause":
      show(await client.pauseRun({ id: needId() }));
      return 0;
    case "resume":
      show(await client.resumeRun({ id: needId() }));
      return 0;
    case "cancel":
      show(await client.cancelRun({ id: needId() }));
      return 0;
  }
}

/** `autodidact run <subcommand> …`; writes to `out`, returns the exit code. */
export async function runCommand(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [sub, ...rest] = argv;
  const usage = `autodidact run <${SUBCOMMANDS.join("|")}> [<id>] [options]`;
  const normalized = rest.map((a) => (a === "-f" ? "--file" : a));
  const parsed = options.parse(normalized, process.env);
  if (parsed.help || sub === undefined || sub === "--help" || sub === "-h") {
    out(options.help({ usage, description: "Create, inspect, follow, pause, resume or cancel runs of the self-improvement loop (the conductor's runs)." }) + "\n");
    return sub === undefined ? 2 : 0;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new AutodidactError(`unknown run command "${sub}": ${usage}`, Code.InvalidArgument);
  const v = parsed.values;
  const client = createClient(ConductorService, await conductorAddress(v.conductor, v.stateDir), { deadlineMs: sub === "watch" ? Infinity : 60_000, ...clientSecurityFromOptions(v, process.env) });
  try {
    return await runSubcommand(client, sub as Subcommand, parsed.positionals[0], v, out);
  } finally {
    client.close();
  }
}
