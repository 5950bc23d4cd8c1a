// Manifest conformance: every Autodidact container of the rendered overlays runs as a local process
// with the manifest's own command, args, env (ConfigMaps, fieldRefs) and ports against a local
// nats-server, and answers grpc.health.v1 SERVING on the port its probes name, serves Prometheus
// metrics on the annotated port, and exits 0 on SIGTERM. Code and manifests cannot drift apart.
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientSecurity, createTestCertificates, generateToken } from "../src/platform/auth/index.js";
import { startNatsServer, type NatsServerProcess } from "../src/platform/bus/index.js";
import { Code } from "../src/platform/errors/index.js";
import { ConductorService, RoundPhase, RunStatus } from "../src/gen/autodidact/v1/conductor_pb.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { MonitorService } from "../src/gen/autodidact/v1/monitor_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { createClient } from "../src/platform/rpc/index.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";
import { autodidactDeployments, launchContainer, podSpecOf, renderOverlay, type K8sObject } from "./deploy-support.js";

let nats: NatsServerProcess;
let modelDir: string;
beforeAll(async () => {
  nats = await startNatsServer();
  modelDir = await mkdtemp(join(tmpdir(), "deploy-conformance-"));
  await saveTinyDecoder(join(modelDir, "likelihood"), 7);
});
afterAll(async () => {
  await nats?.stop();
  await rm(modelDir, { recursive: true, force: true });
});

async function checkContainer(objects: K8sObject[], d: K8sObject): Promise<void> {
  const c = podSpecOf(d).containers[0]!;
  const launched = await launchContainer(objects, d, {
    natsUrl: nats.url,
    // the cluster's checkpoint reference becomes a local model folder
    configMapData: { "critic-likelihood-model": { model: join(modelDir, "likelihood") } },
  });
  try {
    const grpcContainerPort = c.readinessProbe!.grpc!.port;
    const grpcPort = launched.ports.get(grpcContainerPort);
    expect(grpcPort, `${d.metadata.name}: probe port ${grpcContainerPort} is a container port`).toBeDefined();
    expect(launched.ready.grpcPort, `${d.metadata.name} serves gRPC on the probe's port`).toBe(grpcPort);
    expect(c.livenessProbe!.grpc!.port).toBe(grpcContainerPort);
    expect(launched.ready.instanceId).toBe(launched.env["AUTODIDACT_INSTANCE_ID"]);
    const health = createClient(Health, `127.0.0.1:${grpcPort}`);
    try {
      const res = await health.check({ service: "" });
      expect(res.status, d.metadata.name).toBe(HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      health.close();
    }
    const annotations = (d["spec"] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
    const metricsPort = launched.ports.get(Number(annotations["prometheus.io/port"]));
    expect(launched.ready.metricsPort).toBe(metricsPort);
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}${annotations["prometheus.io/path"]}`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
    if (d.metadata.name === "critic-likelihood") {
      // the model named by the mounted reference file is the one it serves
      const critic = createClient(CriticService, `127.0.0.1:${grpcPort}`);
      try {
        const info = await critic.getInfo({});
        expect(info.models[0]?.version).toMatch(/^sha256:/);
        expect(info.attributes["kind"]).toBe("likelihood");
        expect(info.attributes["executionProvider"]).toBe("cpu");
      } finally {
        critic.close();
      }
    }
  } finally {
    const code = await launched.stop();
    expect(code, `${d.metadata.name} exits 0 on SIGTERM; stderr: ${launched.stderr()}`).toBe(0);
  }
}

describe("dev overlay containers run as rendered", async () => {
  const objects = await renderOverlay("dev");
  it.each(autodidactDeployments(objects).map((d) => [d.metadata.name, d] as const))("%s", async (_name, d) => checkContainer(objects, d), 60_000);
});

describe("gpu overlay containers (patched ones) run as rendered, on CPU here", async () => {
  const objects = await renderOverlay("gpu");
  const patched = autodidactDeployments(objects).filter((d) => podSpecOf(d).containers[0]!.resources?.limits?.["nvidia.com/gpu"] !== undefined);
  it("patches three deployments", () => expect(patched.map((d) => d.metadata.name).sort()).toEqual(["critic-likelihood", "generator", "trainer"]));
  it.each(patched.map((d) => [d.metadata.name, d] as const))("%s", async (_name, d) => checkContainer(objects, d), 60_000);
});

describe("dev-secure overlay: a service with its mounted TLS and access-list Secrets", async () => {
  const objects = await renderOverlay("dev-secure");
  it("serves TLS with the mounted certificate, authorizes with the mounted access list, and answers probes in plain text", async () => {
    const pki = await createTestCertificates([]);
    const reader = generateToken("grafana", ["reader"]);
    const d = autodidactDeployments(objects).find((o) => o.metadata.name === "monitor")!;
    const c = podSpecOf(d).containers[0]!;
    const launched = await launchContainer(objects, d, {
      natsUrl: nats.url,
      secretData: {
        "autodidact-grpc-tls": { "tls.crt": await readFile(pki.serverCert, "utf8"), "tls.key": await readFile(pki.serverKey, "utf8"), "ca.crt": await readFile(pki.caCert, "utf8") },
        "autodidact-grpc-auth": { "auth.json": JSON.stringify({ tokens: [reader.entry] }) },
      },
    });
    try {
      expect(launched.ready.tls).toBe(true);
      const probePort = launched.ports.get(c.readinessProbe!.grpc!.port)!;
      expect(launched.ready.healthPort).toBe(probePort);
      const probe = createClient(Health, `127.0.0.1:${probePort}`);
      expect((await probe.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const grpcPort = launched.ready.grpcPort;
      const plain = createClient(MonitorService, `127.0.0.1:${grpcPort}`, { deadlineMs: 5_000 });
      await expect(plain.getInfo({})).rejects.toMatchObject({ code: Code.Unavailable });
      const anonymous = createClient(MonitorService, `localhost:${grpcPort}`, clientSecurity({ tls: { ca: pki.caCert } }));
      await expect(anonymous.getInfo({})).rejects.toMatchObject({ code: Code.Unauthenticated });
      const grafana = createClient(MonitorService, `localhost:${grpcPort}`, clientSecurity({ tls: { ca: pki.caCert }, token: reader.token }));
      expect((await grafana.getInfo({})).serviceName).toBe(MonitorService.typeName);
      await expect(grafana.rollback({})).rejects.toMatchObject({ code: Code.PermissionDenied });
      for (const x of [probe, plain, anonymous, grafana]) x.close();
    } finally {
      const code = await launched.stop();
      await rm(pki.dir, { recursive: true, force: true });
      expect(code, `monitor exits 0 on SIGTERM; stderr: ${launched.stderr()}`).toBe(0);
    }
  }, 60_000);
});

describe("dev overlay: the rendered mesh bootstraps a loop", async () => {
  const objects = await renderOverlay("dev");
  const byName = (name: string): K8sObject => autodidactDeployments(objects).find((d) => d.metadata.name === name)!;
  /** A run of one round with a tiny base model: the mounted run spec replaced, the models volume holding the model. */
  const RUN_YAML = [
    "name: conformance",
    "task: addition-padded",
    "lineages: [{ name: main, baseModel: tiny-main }]",
    "curriculum: { kind: KIND_FIXED_STEP, start: 1, max: 3 }",
    "proposalsPerRound: 8",
    "stop: { maxRounds: 1 }",
    // The panel of the manifests plus one critic that never votes: the tiny random model's answers
    // would fail the rules; after the timeout every sample is accepted, so the round trains.
    "critics: [{ id: rules, kind: rules }, { id: novelty, kind: novelty }, { id: likelihood, kind: likelihood }, { id: absent, kind: rules }]",
    "consensus: { kind: CONSENSUS_KIND_K_OF_N, critics: [rules, novelty, likelihood, absent], k: 1, timeoutMs: 1500, onTimeout: TIMEOUT_OUTCOME_ACCEPT_ALL }",
    "training: { steps: 4, batchSize: 4 }",
    "gate: { minAccuracyDelta: -1, maxDifficultyRegression: 1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 1, maxDriftKl: 1000000000, autoPromote: true }",
    "labels: { anchor: { min: 1, max: 2 }, validation: { min: 1, max: 2 }, test: { min: 1, max: 3 } }",
    "",
  ].join("\n");

  it("a conductor with a mounted run spec imports the base model and completes a round: decided, trained, gated, promoted, served", async () => {
    const server = await startNatsServer();
    const launched: Awaited<ReturnType<typeof launchContainer>>[] = [];
    try {
      const models = await mkdtemp(join(tmpdir(), "deploy-loop-models-"));
      await saveTinyDecoder(join(models, "tiny-main"), 9);
      const configMapData = { "critic-likelihood-model": { model: join(modelDir, "likelihood") }, "conductor-run": { "run.yaml": RUN_YAML } };
      const hosts: Record<string, string> = {};
      // Everyone the conductor calls first (their Service names resolve to where they listen here).
      for (const name of ["consensus", "critic-rules", "critic-novelty", "critic-likelihood", "generator", "trainer", "monitor"]) {
        const extraEnv: Record<string, string> = name === "monitor" ? { AUTODIDACT_EVAL_LIMIT: "2", AUTODIDACT_EVAL_MAX_DIFFICULTY: "3" } : {};
        const c = await launchContainer(objects, byName(name), { natsUrl: server.url, configMapData, extraEnv });
        launched.push(c);
        hosts[`${name}:50051`] = `127.0.0.1:${c.ready.grpcPort}`;
      }
      const conductor = await launchContainer(objects, byName("conductor"), {
        natsUrl: server.url,
        configMapData,
        hosts,
        prepareVolume: async (name, dir) => {
          if (name === "models") await cp(join(models, "tiny-main"), join(dir, "tiny-main"), { recursive: true });
        },
      });
      launched.push(conductor);
      expect(conductor.argv).toContain(`--monitor=${hosts["monitor:50051"]}`);
      const client = createClient(ConductorService, `127.0.0.1:${conductor.ready.grpcPort}`);
      let run = await client.getRun({ id: "conformance" });
      // About half a minute on a quiet machine; a loaded one gets more time.
      for (let i = 0; i < 1_500 && run.status !== RunStatus.SUCCEEDED && run.status !== RunStatus.FAILED; i++) {
        await new Promise((r) => setTimeout(r, 200));
        run = await client.getRun({ id: "conformance" });
      }
      client.close();
      expect(run.status, `${RunStatus[run.status]} round ${run.round} ${RoundPhase[run.phase]}: ${run.message}`).toBe(RunStatus.SUCCEEDED);
      const round = run.rounds[0]!;
      expect([round.proposed, round.decided, round.accepted]).toEqual([8n, 8n, 8n]);
      expect(round.lineages[0], `reasons: ${round.lineages[0]?.reasons.join("; ")}`).toMatchObject({ lineage: "main", parentVersion: 1n, candidateVersion: 2n, promotedVersion: 2n, status: "promoted" });
      const generator = createClient(GeneratorService, hosts["generator:50051"]!);
      let served = "";
      for (let i = 0; i < 50 && served !== "main@2"; i++) {
        served = (await generator.getInfo({})).models[0]?.version ?? "";
        if (served !== "main@2") await new Promise((r) => setTimeout(r, 200));
      }
      generator.close();
      expect(served).toBe("main@2");
      await rm(models, { recursive: true, force: true });
    } finally {
      for (const c of launched.reverse()) await c.stop();
      await server.stop();
    }
  }, 420_000);
});
