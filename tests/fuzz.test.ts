// The CI fuzz run: a few hundred mutated and random protobuf payloads at every gRPC method of every
// service and every NATS subject the services consume, against the real mesh. No process may exit,
// every call must end with a clear status (never INTERNAL / UNKNOWN / UNAVAILABLE, and never its
// deadline unless it is a stream meant to stay open that sent something: a call that hangs fails),
// every service must still be SERVING, and every undecodable message must be terminated and recorded
// as poison by each of its consumers instead of being redelivered forever (bench/fuzz runs >= 10,000 cases).
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { isHang, runFuzz } from "../bench/fuzz/fuzz.js";

describe("fuzz classification of calls that end on their deadline", () => {
  it("passes only a stream meant to stay open that sent something first", () => {
    const outcome = (code: number, messages: number) => ({ code, details: "", messages });
    const unary = { staysOpen: false };
    const watch = { staysOpen: true };
    expect(isHang(unary, outcome(status.DEADLINE_EXCEEDED, 0))).toBe(true);
    expect(isHang(unary, outcome(status.CANCELLED, 0))).toBe(true);
    expect(isHang(unary, outcome(status.DEADLINE_EXCEEDED, 3))).toBe(true); // a stream not meant to stay open
    expect(isHang(watch, outcome(status.DEADLINE_EXCEEDED, 1))).toBe(false);
    expect(isHang(watch, outcome(status.DEADLINE_EXCEEDED, 0))).toBe(true); // silent until its deadline
    expect(isHang(watch, outcome(status.CANCELLED, 1))).toBe(true); // the harness never cancels
    for (const code of [status.OK, status.INVALID_ARGUMENT, status.NOT_FOUND, status.INTERNAL]) expect(isHang(unary, outcome(code, 0))).toBe(false);
  });
});

describe("fuzz run (CI size)", () => {
  it("malformed bytes get clear status codes, crash nothing, and end up as recorded poison", async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const lines: string[] = [];
    const r = await runFuzz({ seed, cases: 400, concurrency: 4, settleTimeoutMs: 90_000, log: (l) => lines.push(l) });
    const context = `seed ${seed}\n${lines.join("\n")}\n${JSON.stringify({ failures: r.failureExamples, hangs: r.hangsByMethod, internal: r.internalErrorLines.slice(0, 5) }, null, 2)}`;
    expect(r.cases, context).toBe(400);
    expect(r.crashes, context).toBe(0);
    expect(r.serving, context).toBe(r.services);
    expect(r.failures, context).toBe(0);
    expect(r.hangsByMethod, context).toEqual({});
    expect(r.statusHistogram.INVALID_ARGUMENT ?? 0, context).toBeGreaterThan(0);
    expect(r.busUndecodable, context).toBeGreaterThan(0);
    expect(r.poisonMissing, context).toBe(0);
    expect(r.poisonRecorded, context).toBeGreaterThanOrEqual(r.poisonExpected);
    expect(r.poisonOverDelivered, context).toBe(0);
    expect(r.unsettledDurables, context).toEqual([]);
  }, 240_000);
});
