// Generic permission data: NATS wildcard matching and the JetStream grants a role table is built from.
import { describe, expect, it } from "vitest";
import { JetStreamGrants, permits, subjectMatches, type NatsPermissions } from "./index.js";

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

describe("permits and JetStreamGrants", () => {
  const perms: NatsPermissions = {
    publish: { allow: [...JetStreamGrants.durableConsumer("WORK", "w1"), ...JetStreamGrants.kvReader("b"), JetStreamGrants.kvWriter("b", "mine.>")], deny: ["$KV.b.mine.locked"] },
    subscribe: { allow: ["_INBOX.>"], deny: [] },
  };
  it("a durable grant covers pulling, acking and recording poison for that durable only", () => {
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.WORK.w1")).toBe(true);
    expect(permits(perms, "publish", "$JS.ACK.WORK.w1.1.2.3.4.5")).toBe(true);
    expect(permits(perms, "publish", "poison.WORK")).toBe(true);
    expect(permits(perms, "publish", "$JS.API.CONSUMER.MSG.NEXT.WORK.w2")).toBe(false);
  });
  it("a KV reader reads the bucket's stream, a writer writes its key pattern, a deny wins", () => {
    expect(permits(perms, "publish", "$JS.API.DIRECT.GET.KV_b.$KV.b.x")).toBe(true);
    expect(permits(perms, "publish", "$KV.b.mine.x")).toBe(true);
    expect(permits(perms, "publish", "$KV.b.other.x")).toBe(false);
    expect(permits(perms, "publish", "$KV.b.mine.locked")).toBe(false);
  });
});
