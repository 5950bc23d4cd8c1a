// The NATS identity `autodidact up` gives each member: permissions name a critic's durable and a
// trainer's, so they must follow the member's own flags.
import { describe, expect, it } from "vitest";
import { permits } from "../../src/platform/nats-auth/index.js";
import { memberIdentity } from "./local-mesh.js";
import { natsPermissions } from "../../src/domain/topology/index.js";

describe("memberIdentity", () => {
  it("takes a critic's id from --critic-id (either spelling), else its name", () => {
    expect(memberIdentity({ name: "critic-a", kind: "critic" })).toEqual({ name: "critic-a", role: "critic", criticId: "critic-a" });
    expect(memberIdentity({ name: "critic-x", kind: "critic", args: ["--kind", "rules", "--critic-id", "rules"] }).criticId).toBe("rules");
    expect(memberIdentity({ name: "critic-y", kind: "critic", args: ["--critic-id=novelty"] }).criticId).toBe("novelty");
    const perms = natsPermissions(memberIdentity({ name: "critic-x", kind: "critic", args: ["--critic-id", "rules"] }));
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.SAMPLES.critic-rules")).toBe(true);
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.SAMPLES.critic-critic-x")).toBe(false);
  });

  it("takes a trainer's durable from --durable, and gives other kinds their role", () => {
    expect(memberIdentity({ name: "trainer-main", kind: "trainer", args: ["--durable", "trainer-main"] })).toEqual({
      name: "trainer-main",
      role: "trainer",
      trainerDurable: "trainer-main",
    });
    expect(memberIdentity({ name: "trainer", kind: "trainer" })).toEqual({ name: "trainer", role: "trainer" });
    expect(memberIdentity({ name: "consensus", kind: "consensus" })).toEqual({ name: "consensus", role: "consensus" });
    expect(memberIdentity({ name: "monitor", kind: "monitor" })).toEqual({ name: "monitor", role: "monitor" });
  });
});
