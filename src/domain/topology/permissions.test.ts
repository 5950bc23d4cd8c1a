// The role table as data: who may write what, checked subject by subject without a server
// (tests/nats-auth.test.ts checks the same against a real nats-server). Subjects and key names are
// spelled out on purpose: they are those of existing deployments and must not drift.
import { describe, expect, it } from "vitest";
import { permits, renderNatsAuthConfig } from "../../platform/nats-auth/index.js";
import { DURABLES, Durables, MESH_ROLES, natsPermissions, STREAMS, type MeshIdentity, type MeshRole } from "./index.js";

const identity = (role: MeshRole): MeshIdentity => (role === "critic" ? { name: "critic-a", role, criticId: "critic-a" } : { name: role, role });
const can = (role: MeshRole, subject: string): boolean => permits(natsPermissions(identity(role)), "publish", subject);
const whoCan = (subject: string): MeshRole[] => MESH_ROLES.filter((r) => can(r, subject));

describe("natsPermissions: only the owning role writes each kind of data", () => {
  it("only the generator proposes samples", () => {
    expect(whoCan("samples.proposed.addition")).toEqual(["generator", "admin"]);
  });
  it("only critics publish verdicts", () => {
    expect(whoCan("verdicts.addition")).toEqual(["critic", "admin"]);
  });
  it("only consensus publishes decisions and writes vote state", () => {
    expect(whoCan("decisions.addition")).toEqual(["consensus", "admin"]);
    expect(whoCan("$KV.consensus.sample-1")).toEqual(["consensus", "admin"]);
  });
  it("only the monitor moves the promoted pointer (the promotion signal) and writes the promotion audit records", () => {
    expect(whoCan("$KV.registry.promoted.main")).toEqual(["monitor", "admin"]);
    expect(whoCan("checkpoints.audit.promoted")).toEqual(["monitor", "admin"]);
    expect(whoCan("checkpoints.audit.rolled_back")).toEqual(["monitor", "admin"]);
    // The pre-audit names are nobody's anymore.
    expect(whoCan("checkpoints.promoted")).toEqual(["admin"]);
  });
  it("the trainer allocates versions, registers checkpoints and uploads files, and the monitor sets statuses", () => {
    // ...and the conductor, for the base models it imports (never the promoted pointer).
    expect(whoCan("$KV.registry.version.main")).toEqual(["trainer", "conductor", "admin"]);
    expect(whoCan("$KV.registry.checkpoint.main.3")).toEqual(["trainer", "monitor", "conductor", "admin"]);
    expect(whoCan("$O.checkpoints.C.abc")).toEqual(["trainer", "conductor", "admin"]);
    expect(whoCan("checkpoints.candidate")).toEqual(["trainer", "admin"]);
    expect(whoCan("checkpoints.round")).toEqual(["trainer", "admin"]);
  });
  it("policies, evaluations and round statistics are the monitor's (key names of existing deployments)", () => {
    expect(whoCan("$KV.registry.consensus-policy.default")).toEqual(["monitor", "admin"]);
    expect(whoCan("$KV.registry.monitor.gating-policy")).toEqual(["monitor", "admin"]);
    expect(whoCan("$KV.registry.monitor.evaluation.main.3")).toEqual(["monitor", "admin"]);
    expect(whoCan("$KV.registry.monitor.rounds.addition.2")).toEqual(["monitor", "admin"]);
    // Only the declared monitor key spaces, not the whole `monitor.` prefix.
    expect(whoCan("$KV.registry.monitor.other")).toEqual(["admin"]);
  });
  it("no service role may create, change, delete or purge streams, nor delete stream messages", () => {
    for (const s of ["SAMPLES", "DECISIONS", "KV_registry", "KV_consensus", "OBJ_checkpoints"]) {
      for (const op of ["CREATE", "UPDATE", "DELETE"]) expect(whoCan(`$JS.API.STREAM.${op}.${s}`), `${op} ${s}`).toEqual(["admin"]);
      expect(whoCan(`$JS.API.STREAM.MSG.DELETE.${s}`)).toEqual(["admin"]);
    }
    for (const s of ["SAMPLES", "DECISIONS", "KV_registry", "KV_consensus"]) expect(whoCan(`$JS.API.STREAM.PURGE.${s}`)).toEqual(["admin"]);
    // Only the object store is purgeable by the trainer: nats.js removes the chunks of a replaced upload.
    expect(whoCan("$JS.API.STREAM.PURGE.OBJ_checkpoints")).toEqual(["trainer", "conductor", "admin"]);
  });
  it("only the conductor records runs, leases and run events; it reads decisions message by message, never from a durable", () => {
    expect(whoCan("$KV.conductor.run.r1")).toEqual(["conductor", "admin"]);
    expect(whoCan("$KV.conductor.lease.r1")).toEqual(["conductor", "admin"]);
    expect(whoCan("runs.r1.events")).toEqual(["conductor", "admin"]);
    expect(whoCan("$JS.API.STREAM.MSG.GET.DECISIONS")).toEqual(["conductor", "admin"]);
    expect(can("conductor", "$JS.API.CONSUMER.INFO.DECISIONS.trainer-lineage-1")).toBe(true);
    for (const durable of ["trainer", "trainer-lineage-1", "monitor-round-stats"]) {
      expect(can("conductor", `$JS.API.CONSUMER.MSG.NEXT.DECISIONS.${durable}`)).toBe(false);
      expect(can("conductor", `$JS.API.CONSUMER.CREATE.DECISIONS.${durable}`)).toBe(false);
    }
    // WatchRun follows RUNS with ordered consumers; nobody else reads it.
    expect(whoCan("$JS.API.CONSUMER.CREATE.RUNS.oc_1.runs.r1.events")).toEqual(["conductor", "admin"]);
    expect(can("conductor", "$KV.registry.promoted.main")).toBe(false);
    expect(can("conductor", "decisions.addition")).toBe(false);
    expect(can("conductor", "samples.proposed.addition")).toBe(false);
  });
  it("streams read with ordered consumers declare no durables (the readers' grant covers any consumer name)", () => {
    for (const s of STREAMS) if ((s.readers ?? []).length > 0) expect(DURABLES.filter((d) => d.stream === s.name), s.name).toEqual([]);
  });
  it("a critic consumes only with its own durable; others' durables are out of reach", () => {
    const perms = natsPermissions({ name: "critic-a", role: "critic", criticId: "critic-a" });
    const own = Durables.critic.name("critic-a");
    expect(own).toBe("critic-critic-a");
    expect(permits(perms, "publish", `$JS.API.CONSUMER.MSG.NEXT.SAMPLES.${own}`)).toBe(true);
    expect(permits(perms, "publish", `$JS.ACK.SAMPLES.${own}.1.2.3.4.5`)).toBe(true);
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.SAMPLES.consensus-samples")).toBe(false);
    expect(permits(perms, "publish", `$JS.API.CONSUMER.MSG.NEXT.SAMPLES.${Durables.critic.name("critic-b")}`)).toBe(false);
    expect(permits(perms, "publish", "$JS.ACK.SAMPLES.consensus-samples.1.2.3.4.5")).toBe(false);
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.VERDICTS.consensus-verdicts")).toBe(false);
    expect(permits(perms, "subscribe", "decisions.addition")).toBe(true);
    expect(permits(perms, "subscribe", "verdicts.addition")).toBe(false);
  });
  it("a trainer consumes with its configured durable, the default one otherwise", () => {
    expect(permits(natsPermissions({ name: "t", role: "trainer" }), "publish", "$JS.API.CONSUMER.MSG.NEXT.DECISIONS.trainer")).toBe(true);
    const custom = natsPermissions({ name: "t", role: "trainer", trainerDurable: "trainer-b" });
    expect(permits(custom, "publish", "$JS.API.CONSUMER.MSG.NEXT.DECISIONS.trainer-b")).toBe(true);
    expect(permits(custom, "publish", "$JS.API.CONSUMER.MSG.NEXT.DECISIONS.trainer")).toBe(false);
  });
  it("the generator observes the critics' backlog on SAMPLES without consuming", () => {
    expect(whoCan("$JS.API.CONSUMER.LIST.SAMPLES")).toEqual(["generator", "admin"]);
    expect(can("generator", "$JS.API.CONSUMER.INFO.SAMPLES.critic-rules")).toBe(true);
    expect(can("generator", "$JS.API.CONSUMER.MSG.NEXT.SAMPLES.critic-rules")).toBe(false);
  });
  it("every service role verifies the whole topology and gets replies on _INBOX", () => {
    for (const role of MESH_ROLES) {
      const perms = natsPermissions(identity(role));
      for (const s of ["SAMPLES", "VERDICTS", "DECISIONS", "CHECKPOINTS", "POISON", "RUNS", "KV_consensus", "KV_registry", "KV_conductor", "OBJ_checkpoints"]) {
        expect(permits(perms, "publish", `$JS.API.STREAM.INFO.${s}`), `${role} ${s}`).toBe(true);
      }
      expect(permits(perms, "subscribe", "_INBOX.abc.1")).toBe(true);
    }
  });
  it("each consumer may record poison only for the streams it consumes", () => {
    expect(whoCan("poison.SAMPLES")).toEqual(["critic", "consensus", "admin"]);
    expect(whoCan("poison.VERDICTS")).toEqual(["consensus", "admin"]);
    expect(whoCan("poison.DECISIONS")).toEqual(["trainer", "monitor", "admin"]);
    expect(whoCan("poison.CHECKPOINTS")).toEqual(["monitor", "admin"]);
  });
  it("refuses an unknown role", () => {
    expect(() => natsPermissions({ name: "x", role: "root" as MeshRole })).toThrow(/unknown mesh role/);
  });
});

describe("renderNatsAuthConfig with the mesh's permissions", () => {
  it("writes nkey users with their allow and deny lists, quoting `$` subjects", () => {
    const text = renderNatsAuthConfig([{ publicKey: `U${"A".repeat(55)}`, permissions: natsPermissions(identity("trainer")), comment: "trainer" }]);
    expect(text).toContain(`nkey: "U${"A".repeat(55)}"`);
    expect(text).toContain('"$KV.registry.version.>"');
    expect(text).toMatch(/deny: \[[^\]]*"\$KV\.registry\.promoted\.>"/);
    expect(() => renderNatsAuthConfig([{ publicKey: "SUABC", permissions: natsPermissions(identity("trainer")) }])).toThrow(/public nkey/);
  });
});
