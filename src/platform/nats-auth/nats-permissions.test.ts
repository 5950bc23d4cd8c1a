// The role table as data: who may write what, checked subject by subject without a server
// (tests/nats-auth.test.ts checks the same against a real nats-server).
import { describe, expect, it } from "vitest";
import { POLICY_KEY_PREFIX } from "../../domain/consensus/index.js";
import { criticDurable } from "../../../services/critic/critic.js";
import { MESH_ROLES, natsPermissions, permits, subjectMatches, type MeshIdentity, type MeshRole } from "./index.js";
import { renderNatsAuthConfig } from "./nats-auth.js";

const identity = (role: MeshRole): MeshIdentity => (role === "critic" ? { name: "critic-a", role, criticId: "critic-a" } : { name: role, role });
const can = (role: MeshRole, subject: string): boolean => permits(natsPermissions(identity(role)), "publish", subject);
const whoCan = (subject: string): MeshRole[] => MESH_ROLES.filter((r) => can(r, subject));

describe("subjectMatches", () => {
  it("follows NATS wildcard rules", () => {
    expect(subjectMatches("a.*.c", "a.b.c")).toBe(true);
    expect(subjectMatches("a.*.c", "a.b.d")).toBe(false);
    expect(subjectMatches("a.>", "a")).toBe(false);
    expect(subjectMatches("a.>", "a.b.c")).toBe(true);
    expect(subjectMatches("a.b", "a.b.c")).toBe(false);
    expect(subjectMatches(">", "anything.at.all")).toBe(true);
  });
});

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
  it("only the monitor moves the promoted pointer and announces promotions and rollbacks", () => {
    expect(whoCan("$KV.registry.promoted.main")).toEqual(["monitor", "admin"]);
    expect(whoCan("checkpoints.promoted")).toEqual(["monitor", "admin"]);
    expect(whoCan("checkpoints.rolled_back")).toEqual(["monitor", "admin"]);
  });
  it("the trainer allocates versions, registers checkpoints and uploads files, and the monitor sets statuses", () => {
    expect(whoCan("$KV.registry.version.main")).toEqual(["trainer", "admin"]);
    expect(whoCan("$KV.registry.checkpoint.main.3")).toEqual(["trainer", "monitor", "admin"]);
    expect(whoCan("$O.checkpoints.C.abc")).toEqual(["trainer", "admin"]);
    expect(whoCan("checkpoints.candidate")).toEqual(["trainer", "admin"]);
    expect(whoCan("checkpoints.round")).toEqual(["trainer", "admin"]);
  });
  it("policies and evaluations are the monitor's (key prefixes as the services spell them)", () => {
    expect(POLICY_KEY_PREFIX).toBe("consensus-policy.");
    expect(whoCan(`$KV.registry.${POLICY_KEY_PREFIX}default`)).toEqual(["monitor", "admin"]);
    expect(whoCan("$KV.registry.monitor.gating-policy")).toEqual(["monitor", "admin"]);
    expect(whoCan("$KV.registry.monitor.evaluation.main.3")).toEqual(["monitor", "admin"]);
    expect(whoCan("$KV.registry.monitor.rounds.addition.2")).toEqual(["monitor", "admin"]);
  });
  it("no service role may create, change, delete or purge streams, nor delete stream messages", () => {
    for (const s of ["SAMPLES", "DECISIONS", "KV_registry", "KV_consensus", "OBJ_checkpoints"]) {
      for (const op of ["CREATE", "UPDATE", "DELETE"]) expect(whoCan(`$JS.API.STREAM.${op}.${s}`), `${op} ${s}`).toEqual(["admin"]);
      expect(whoCan(`$JS.API.STREAM.MSG.DELETE.${s}`)).toEqual(["admin"]);
    }
    for (const s of ["SAMPLES", "DECISIONS", "KV_registry", "KV_consensus"]) expect(whoCan(`$JS.API.STREAM.PURGE.${s}`)).toEqual(["admin"]);
    // Only the object store is purgeable by the trainer: nats.js removes the chunks of a replaced upload.
    expect(whoCan("$JS.API.STREAM.PURGE.OBJ_checkpoints")).toEqual(["trainer", "admin"]);
  });
  it("a critic consumes only with its own durable; others' durables are out of reach", () => {
    const perms = natsPermissions({ name: "critic-a", role: "critic", criticId: "critic-a" });
    const own = criticDurable("critic-a");
    expect(permits(perms, "publish", `$JS.API.CONSUMER.MSG.NEXT.SAMPLES.${own}`)).toBe(true);
    expect(permits(perms, "publish", `$JS.ACK.SAMPLES.${own}.1.2.3.4.5`)).toBe(true);
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.SAMPLES.consensus-samples")).toBe(false);
    expect(permits(perms, "publish", `$JS.API.CONSUMER.MSG.NEXT.SAMPLES.${criticDurable("critic-b")}`)).toBe(false);
    expect(permits(perms, "publish", "$JS.ACK.SAMPLES.consensus-samples.1.2.3.4.5")).toBe(false);
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.VERDICTS.consensus-verdicts")).toBe(false);
    expect(permits(perms, "subscribe", "decisions.addition")).toBe(true);
    expect(permits(perms, "subscribe", "verdicts.addition")).toBe(false);
  });
  it("every service role verifies the whole topology and gets replies on _INBOX", () => {
    for (const role of MESH_ROLES) {
      const perms = natsPermissions(identity(role));
      for (const s of ["SAMPLES", "VERDICTS", "DECISIONS", "CHECKPOINTS", "POISON", "KV_consensus", "KV_registry", "OBJ_checkpoints"]) {
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

describe("renderNatsAuthConfig", () => {
  it("writes nkey users with their allow and deny lists, quoting `$` subjects", () => {
    const text = renderNatsAuthConfig([{ publicKey: `U${"A".repeat(55)}`, permissions: natsPermissions(identity("trainer")), comment: "trainer" }]);
    expect(text).toContain(`nkey: "U${"A".repeat(55)}"`);
    expect(text).toContain('"$KV.registry.version.>"');
    expect(text).toMatch(/deny: \[[^\]]*"\$KV\.registry\.promoted\.>"/);
    expect(() => renderNatsAuthConfig([{ publicKey: "SUABC", permissions: natsPermissions(identity("trainer")) }])).toThrow(/public nkey/);
  });
});
