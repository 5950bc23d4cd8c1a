// Manifest conformance: every Autodidact container of the rendered overlays runs as a local process
// with the manifest's own command, args, env (ConfigMaps, fieldRefs) and ports against a local
// nats-server, and answers grpc.health.v1 SERVING on the port its probes name, serves Prometheus
// metrics on the annotated port, and exits 0 on SIGTERM. Code and manifests cannot drift apart.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../src/bus/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { createClient } from "../src/rpc/index.js";
import { saveTinyDecoder } from "../src/serving/test-models.js";
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
