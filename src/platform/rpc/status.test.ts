import { Metadata, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { DecodeFailure, fromStatus, toStatus } from "./status.js";

describe("status mapping", () => {
  it("keeps an AutodidactError's code and message without the [code] prefix", () => {
    const s = toStatus(new AutodidactError("checkpoint 7 not found", Code.NotFound));
    expect(s.code).toBe(status.NOT_FOUND);
    expect(s.details).toBe("checkpoint 7 not found");
  });

  it("cuts a message that quotes a huge input, so the trailer stays small enough to reach the client", () => {
    const s = toStatus(new AutodidactError(`invalid lineage "${"!".repeat(1_000_000)}"`, Code.InvalidArgument));
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(s.details.length).toBeLessThan(2_100);
    expect(s.details).toMatch(/^invalid lineage "!!!/);
    expect(s.details).toMatch(/more characters\)$/);
  });

  it("hides anything else behind INTERNAL", () => {
    const s = toStatus(new TypeError("cannot read x of undefined at /srv/secret.ts:12"));
    expect(s.code).toBe(status.INTERNAL);
    expect(s.details).not.toContain("secret");
    expect(toStatus("a string").code).toBe(status.INTERNAL);
  });

  it("reports a decode failure as INVALID_ARGUMENT naming the message type", () => {
    const s = toStatus(new DecodeFailure("autodidact.v1.ScoreRequest", new Error("premature EOF")));
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(s.details).toContain("autodidact.v1.ScoreRequest");
    expect(s.details).toContain("premature EOF");
  });

  it("turns a grpc ServiceError into an AutodidactError with the same code", () => {
    const serviceError = Object.assign(new Error("5 NOT_FOUND: no such sample"), {
      code: status.NOT_FOUND,
      details: "no such sample",
      metadata: new Metadata(),
    });
    const e = fromStatus(serviceError, "autodidact.v1.CriticService/Score");
    expect(e.code).toBe(Code.NotFound);
    expect(e.rawMessage).toBe("no such sample");
    expect(e.cause).toBe(serviceError);
    expect(e.details.method).toBe("autodidact.v1.CriticService/Score");
  });

  it("passes an AutodidactError through and wraps unknown failures as Unknown", () => {
    const original = new AutodidactError("x", Code.Aborted);
    expect(fromStatus(original, "m")).toBe(original);
    expect(fromStatus(new Error("socket hang up"), "m").code).toBe(Code.Unknown);
  });
});
