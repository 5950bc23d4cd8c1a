import { CheckpointStatus } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { clientSecurityFromOptions } from "../../src/platform/auth/index.js";
import { clientSecurityOptions, defineOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createClient } from "../../src/platform/rpc/index.js";
import { defaultStateDir, readMeshState } from "./mesh-state.js";
import { formatTable } from "./table.js";

const options = defineOptions({
  monitor: { type: "string", help: "gRPC address of the monitor (default: the local mesh's)", env: "AUTODIDACT_MONITOR", placeholder: "<host:port>" },
  stateDir: { type: "string", help: "folder of the local mesh state", env: "AUTODIDACT_STATE_DIR" },
  lineage: { type: "string", help: "checkpoint lineage", env: "AUTODIDACT_LINEAGE", default: "main" },
  reason: { type: "string", help: "why (rollback)", default: "" },
  limit: { type: "int", help: "history entries (0 = all)", default: 0, min: 0 },
  json: { type: "bool", help: "print JSON instead of a table" },
  ...clientSecurityOptions,
});

const STATUS: Record<number, string> = {
  [CheckpointStatus.CANDIDATE]: "candidate",
  [CheckpointStatus.PROMOTED]: "promoted",
  [CheckpointStatus.REJECTED]: "rejected",
  [CheckpointStatus.ROLLED_BACK]: "rolled_back",
};

async function monitorAddress(explicit: string | undefined, stateDir: string | undefined): Promise<string> {
  if (explicit) return explicit;
  const dir = stateDir ?? defaultStateDir();
  const entry = (await readMeshState(dir)).services.find((s) => s.kind === "monitor");
  if (!entry) throw new AutodidactError(`no monitor of the local mesh in ${dir}: start one with \`autodidact up\` or pass --monitor`, Code.Unavailable);
  return entry.address;
}

const versionArg = (arg: string | undefined, command: string, optional: boolean): bigint => {
  if (arg === undefined && optional) return 0n;
  if (arg === undefined || !/^\d+$/.test(arg)) throw new AutodidactError(`usage: autodidact ${command} <version> [options] (version: a positive integer${optional ? ", default the previous promoted one" : ""})`, Code.InvalidArgument);
  return BigInt(arg);
};

/**
 * `autodidact history | lineage <version> | rollback [<version>]`: the monitor's version control from
 * a terminal, over its gRPC API. Writes to `out`; returns the exit code.
 */
export async function monitorCommand(command: "history" | "lineage" | "rollback", argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = options.parse(argv, process.env);
  if (parsed.help) {
    out(options.help({ usage: `autodidact ${command}${command === "history" ? "" : " <version>"} [options]` }) + "\n");
    return 0;
  }
  const v = parsed.values;
  const positional = parsed.positionals?.[0];
  const security = clientSecurityFromOptions(v, process.env);
  const client = createClient(MonitorService, await monitorAddress(v.monitor, v.stateDir), { deadlineMs: 120_000, ...security });
  try {
    if (command === "history") {
      const h = await client.history({ lineage: v.lineage, limit: v.limit });
      if (v.json) {
        out(JSON.stringify({ promotedVersion: Number(h.promotedVersion), checkpoints: h.checkpoints.map((c) => ({ version: Number(c.version), parentVersion: Number(c.parentVersion), round: c.round, status: STATUS[c.status] ?? String(c.status), reason: c.statusReason, metrics: c.metrics })) }) + "\n");
        return 0;
      }
      const rows = h.checkpoints.map((c) => [
        `v${c.version}${c.version === h.promotedVersion ? " *" : ""}`,
        c.round,
        c.parentVersion ? `v${c.parentVersion}` : "-",
        STATUS[c.status] ?? String(c.status),
        c.metrics.eval_accuracy?.toFixed(3) ?? "-",
        c.metrics.eval_loss?.toFixed(3) ?? "-",
        c.statusReason.length > 80 ? `${c.statusReason.slice(0, 77)}...` : c.statusReason,
      ]);
      out(`lineage ${v.lineage}, promoted ${h.promotedVersion ? `v${h.promotedVersion}` : "none"}\n\n${formatTable(["version", "round", "parent", "status", "accuracy", "loss", "reason"], rows)}\n`);
      return 0;
    }
    if (command === "lineage") {
      const res = await client.lineage({ lineage: v.lineage, version: versionArg(positional, command, false) });
      if (v.json) {
        out(JSON.stringify(res.entries.map((e, i) => ({ version: Number(e.version), round: res.chain[i]?.round, status: STATUS[res.chain[i]?.status ?? 0], rounds: e.rounds, sampleCount: Number(e.sampleCount), sampleIdsDigest: e.sampleIdsDigest, syntheticCount: Number(e.syntheticCount), realCount: Number(e.realCount), criticVotes: e.criticVotes }))) + "\n");
        return 0;
      }
      const rows = res.entries.map((e, i) => [
        `v${e.version}`,
        e.rounds.join(",") || "-",
        STATUS[res.chain[i]?.status ?? 0] ?? "-",
        Number(e.sampleCount),
        `${Number(e.syntheticCount)}/${Number(e.realCount)}`,
        Object.entries(e.criticVotes).map(([k, n]) => `${k}=${Number.isInteger(n) ? n : n.toFixed(2)}`).join(" ") || "-",
        e.sampleIdsDigest || "-",
      ]);
      out(`${formatTable(["version", "rounds", "status", "samples", "synthetic/real", "critic votes", "sample ids"], rows)}\n`);
      return 0;
    }
    const res = await client.rollback({ lineage: v.lineage, toVersion: versionArg(positional, command, true), reason: v.reason || "autodidact rollback" });
    out(`rolled back ${v.lineage}: v${res.previous?.version ?? 0} -> v${res.current?.version ?? 0} (generator and critics follow the promoted pointer)\n`);
    return 0;
  } finally {
    client.close();
  }
}
