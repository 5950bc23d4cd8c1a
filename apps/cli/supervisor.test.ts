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

  it("stopAll waits for a process's own drain after SIGTERM; forceAll (a second Ctrl-C) cuts it short", async () => {
    sup = createSupervisor({ initialDelayMs: 10, maxDelayMs: 10, stableAfterMs: 60_000 });
    const exits = new Map<string, [number | null, NodeJS.Signals | null]>();
    sup.on("exited", (name, code, signal) => exits.set(name, [code, signal]));
    const lines: string[] = [];
    sup.on("output", (name, line) => lines.push(`${name}: ${line}`));
    // "Services" that take longer to drain on SIGTERM than the test runs; one of them exits at once on a
    // repeated signal (as src/platform/host does on the third), the other ignores it.
    const drainer = (onRepeat: string): string =>
      `let n = 0; process.on('SIGTERM', () => { if (++n === 1) { console.log('draining'); setTimeout(() => process.exit(0), 60_000); } else { ${onRepeat} } }); console.log('up'); setInterval(() => {}, 1000);`;
    sup.start({ name: "quits", command: node, args: ["-e", drainer("process.exit(143);")] });
    sup.start({ name: "stubborn", command: node, args: ["-e", drainer("console.log('ignored');")] });
    await waitFor(() => lines.includes("quits: up") && lines.includes("stubborn: up"));
    let stopped = false;
    const stopping = sup.stopAll(120_000).then(() => (stopped = true));
    await waitFor(() => lines.includes("quits: draining") && lines.includes("stubborn: draining"));
    await new Promise((r) => setTimeout(r, 200));
    expect(stopped).toBe(false);
    expect(exits.size).toBe(0);
    sup.forceAll(300);
    await stopping;
    expect(Object.fromEntries(exits)).toEqual({ quits: [143, null], stubborn: [null, "SIGKILL"] });
    expect(lines).toContain("stubborn: ignored");
    expect(sup.restarts("quits") + sup.restarts("stubborn")).toBe(0);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
