import { afterEach, describe, expect, it } from "vitest";
import { createSupervisor, type Supervisor } from "./supervisor.js";

const node = process.execPath;

describe("supervisor", () => {
  let sup: Supervisor | undefined;
  afterEach(async () => {
    await sup?.stopAll(2_000);
    sup = undefined;
  });

  it("restarts a crashing process with growing delays", async () => {
    sup = createSupervisor({ initialDelayMs: 20, maxDelayMs: 80, stableAfterMs: 60_000 });
    const delays: number[] = [];
    sup.on("restarting", (_name, delay) => delays.push(delay));
    sup.start({ name: "crasher", command: node, args: ["-e", "process.exit(3)"] });
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (delays.length >= 4) {
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
    expect(delays.slice(0, 4)).toEqual([20, 40, 80, 80]);
    expect(sup.restarts("crasher")).toBeGreaterThanOrEqual(3);
  });

  it("restarts a SIGKILLed service and stops everything on stopAll", async () => {
    sup = createSupervisor({ initialDelayMs: 10, maxDelayMs: 10, stableAfterMs: 60_000 });
    const started: number[] = [];
    sup.on("started", (_n, pid) => started.push(pid));
    sup.start({ name: "sleeper", command: node, args: ["-e", "setInterval(() => {}, 1000)"] });
    await waitFor(() => started.length === 1);
    const first = sup.child("sleeper");
    first?.kill("SIGKILL");
    await waitFor(() => started.length === 2);
    expect(started[1]).not.toBe(started[0]);
    const second = sup.child("sleeper");
    await sup.stopAll(2_000);
    expect(second?.exitCode !== null || second?.signalCode !== null).toBe(true);
    expect(sup.child("sleeper")).toBeUndefined();
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
