/**
 * The quick demo on a 3-node JetStream cluster while the node leading the registry's KV bucket is SIGKILLed
 * mid-round (`node --import tsx bench/chaos/cluster-demo.ts [--phase "round 1: training"] [--bucket registry] [--down 8s] [-- <demo flags>]`):
 * starts the cluster on loopback, runs `autodidact demo --quick` with NATS_URL listing the three
 * nodes and AUTODIDACT_NATS_REPLICAS=3, kills the registry bucket's leader when the demo prints the
 * phase, starts the node again after `--down`, and exits with the demo's exit code. Afterwards it
 * prints every stream's and bucket's replicas and leader.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connectBus, describeTopology, startNatsCluster } from "../../src/platform/bus/index.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const phase = flag("phase") ?? "round 1: training";
/** The KV bucket whose leader is killed (the registry's by default, as in the issue this reproduces). */
const bucket = flag("bucket") ?? "registry";
const downMs = Number((flag("down") ?? "8s").replace(/s$/, "")) * 1000;
const cli = fileURLToPath(new URL("../../bin/autodidact.mjs", import.meta.url));

const cluster = await startNatsCluster();
const bus = await connectBus({ servers: cluster.url, name: "cluster-demo", maxReconnectDelayMs: 250 });
process.stdout.write(`cluster: NATS_URL=${cluster.url}\n`);
const started = Date.now();
let killed: string | undefined;
try {
  // Arguments after `--` go to the demo.
  const extra = process.argv.includes("--") ? process.argv.slice(process.argv.indexOf("--") + 1) : [];
  const demo = spawn(process.execPath, [cli, "demo", "--quick", ...extra], {
    env: { ...process.env, NATS_URL: cluster.url, AUTODIDACT_NATS_REPLICAS: "3" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const onOutput = (chunk: Buffer, to: NodeJS.WriteStream): void => {
    const text = chunk.toString();
    to.write(text);
    if (killed === undefined && text.includes(phase)) {
      killed = "…";
      void (async () => {
        const registry = (await describeTopology(bus, MESH_TOPOLOGY)).find((a) => a.kind === "kv" && a.name === bucket);
        killed = registry?.leader ?? "none";
        if (registry?.leader === undefined) return;
        await cluster.node(registry.leader).kill();
        process.stdout.write(`\n[cluster-demo] ${((Date.now() - started) / 1000).toFixed(1)}s: SIGKILL ${registry.leader}, leader of the ${registry.stream} bucket (replicas ${registry.replicas}); restarting it in ${downMs / 1000} s\n`);
        await new Promise((r) => setTimeout(r, downMs));
        await cluster.node(registry.leader).start();
        process.stdout.write(`\n[cluster-demo] ${registry.leader} restarted\n`);
      })();
    }
  };
  demo.stdout.on("data", (c: Buffer) => onOutput(c, process.stdout));
  demo.stderr.on("data", (c: Buffer) => onOutput(c, process.stderr));
  const code = await new Promise<number>((resolve) => demo.once("exit", (c) => resolve(c ?? 1)));
  process.stdout.write(`\n[cluster-demo] demo exited with ${code} after ${((Date.now() - started) / 1000).toFixed(0)} s; killed: ${killed ?? "nothing (phase never printed)"}\n`);
  for (const a of await describeTopology(bus, MESH_TOPOLOGY)) process.stdout.write(`  ${a.stream.padEnd(16)} replicas ${a.replicas} leader ${a.leader ?? "-"}\n`);
  process.exitCode = code;
} finally {
  await bus.close();
  await cluster.stop();
}
