// deploy/k8s rendered offline: every overlay renders with kubectl kustomize, every object validates
// against the Kubernetes OpenAPI schemas (kubernetes-models) or, for KEDA's ScaledObject, its CRD
// schema plus our own checks, and the objects agree with each other and with the services' flags.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { Durables } from "../src/domain/topology/index.js";
import { criticOptions } from "../services/critic/index.js";
import { autodidactDeployments, find, OVERLAYS, podSpecOf, renderOverlay, REPO_ROOT, type K8sObject } from "./deploy-support.js";

/** The kubernetes-models class of an object, from its apiVersion and kind (KEDA from its own package). */
async function modelFor(o: K8sObject): Promise<new (data: object) => { validate(): void }> {
  const path =
    o.apiVersion === "keda.sh/v1alpha1"
      ? `@kubernetes-models/keda/keda.sh/v1alpha1/${o.kind}`
      : `kubernetes-models/${o.apiVersion}/${o.kind}`;
  const mod = (await import(path)) as Record<string, new (data: object) => { validate(): void }>;
  const model = mod[o.kind];
  if (model === undefined) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  return model;
}

function flag(args: readonly string[] | undefined, name: string): string | undefined {
  const a = args?.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

const rendered = new Map<string, K8sObject[]>();
beforeAll(async () => {
  for (const overlay of OVERLAYS) rendered.set(overlay, await renderOverlay(overlay));
});
const objectsOf = (overlay: string): K8sObject[] => rendered.get(overlay) ?? [];

describe.each(OVERLAYS)("overlay %s", (overlay) => {
  it("renders the whole mesh into one namespace", () => {
    const objects = objectsOf(overlay);
    const deployments = autodidactDeployments(objects).map((d) => d.metadata.name).sort();
    expect(deployments).toEqual(["conductor", "consensus", "critic-likelihood", "critic-novelty", "critic-rules", "generator", "monitor", "trainer"]);
    for (const o of objects) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("autodidact");
    expect(objects.some((o) => o.kind === "Deployment" && o.metadata.name === "otel-collector")).toBe(true);
    expect(objects.some((o) => o.kind === "Deployment" && o.metadata.name === "jaeger")).toBe(true);
  });

  it("validates every object against its OpenAPI schema", async () => {
    for (const o of objectsOf(overlay)) {
      const Model = await modelFor(o);
      expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
  });

  it("gives every service a gRPC health probe on its --grpc-port, metrics annotations, requests, a Service and a PDB", () => {
    const objects = objectsOf(overlay);
    for (const d of autodidactDeployments(objects)) {
      const name = d.metadata.name;
      const pod = podSpecOf(d);
      const c = pod.containers[0]!;
      const grpcPort = Number(flag(c.args, "grpc-port"));
      const metricsPort = Number(flag(c.args, "metrics-port"));
      expect(c.ports?.map((p) => p.containerPort)).toEqual(expect.arrayContaining([grpcPort, metricsPort]));
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) expect(probe?.grpc?.port, name).toBe(grpcPort);
      const annotations = (d["spec"] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
      expect(annotations["prometheus.io/scrape"]).toBe("true");
      expect(Number(annotations["prometheus.io/port"])).toBe(metricsPort);
      expect(c.resources?.requests?.["cpu"], name).toBeDefined();
      expect(c.resources?.requests?.["memory"], name).toBeDefined();
      const labels = (d["spec"] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
      const matches = (sel: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v);
      const svc = find(objects, "Service", name)["spec"] as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
      expect(matches(svc.selector), `Service ${name} selects its pods`).toBe(true);
      expect(svc.ports.find((p) => p.targetPort === "grpc")?.port).toBe(grpcPort);
      const pdb = find(objects, "PodDisruptionBudget", name)["spec"] as { selector: { matchLabels: Record<string, string> } };
      expect(matches(pdb.selector.matchLabels), `PDB ${name} selects its pods`).toBe(true);
      const policies = objects.filter((o) => o.kind === "NetworkPolicy").map((o) => o["spec"] as { podSelector: { matchLabels?: Record<string, string> }; ingress: { ports: { port: number }[] }[] });
      const covering = policies.filter((p) => matches(p.podSelector.matchLabels ?? {}));
      expect(covering.length, `a NetworkPolicy covers ${name}`).toBeGreaterThan(0);
      expect(covering.flatMap((p) => p.ingress.flatMap((i) => i.ports.map((x) => x.port)))).toEqual(expect.arrayContaining([grpcPort, metricsPort]));
    }
  });

  it("references only ConfigMaps and claims that exist, and runs streams R3 against the NATS service", () => {
    const objects = objectsOf(overlay);
    for (const d of objects.filter((o) => o.kind === "Deployment")) {
      const pod = podSpecOf(d);
      for (const c of pod.containers) for (const f of c.envFrom ?? []) if (f.configMapRef) find(objects, "ConfigMap", f.configMapRef.name);
      for (const v of pod.volumes ?? []) {
        if (v.configMap) find(objects, "ConfigMap", v.configMap.name);
        if (v.persistentVolumeClaim) find(objects, "PersistentVolumeClaim", v.persistentVolumeClaim.claimName);
      }
    }
    const mesh = find(objects, "ConfigMap", "autodidact-mesh")["data"] as Record<string, string>;
    expect(mesh["AUTODIDACT_NATS_REPLICAS"]).toBe("3");
    expect(mesh["NATS_URL"]).toBe("nats://nats:4222");
    expect(mesh["OTEL_EXPORTER_OTLP_ENDPOINT"]).toBe("http://otel-collector:4318");
    const trainer = podSpecOf(find(objects, "Deployment", "trainer"));
    expect(trainer.volumes?.some((v) => v.persistentVolumeClaim?.claimName === "trainer-data")).toBe(true);
    // Its data dir (training set, round journal) is that volume: the root filesystem is read-only.
    const dataMount = trainer.containers[0]!.volumeMounts?.find((m) => m.name === trainer.volumes?.find((v) => v.persistentVolumeClaim?.claimName === "trainer-data")?.name);
    expect(flag(trainer.containers[0]!.args, "data-dir")).toBe(dataMount?.mountPath);
  });

  it("gives every service its own NATS credentials from an optional Secret, and commits no Secret", () => {
    const objects = objectsOf(overlay);
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
    for (const d of autodidactDeployments(objects)) {
      const env = podSpecOf(d).containers[0]!.env ?? [];
      const seed = env.find((e) => e.name === "AUTODIDACT_NATS_NKEY_SEED");
      expect(seed?.valueFrom?.secretKeyRef, d.metadata.name).toEqual({ name: `autodidact-nats-${d.metadata.name}`, key: "nkey-seed", optional: true });
      // The conductor also sends an admin token to the services it calls (optional Secret too).
      const secrets = env.filter((e) => e.valueFrom?.secretKeyRef !== undefined).map((e) => e.valueFrom!.secretKeyRef);
      expect(secrets, d.metadata.name).toEqual(
        d.metadata.name === "conductor" ? [seed!.valueFrom!.secretKeyRef, { name: "autodidact-conductor-token", key: "token", optional: true }] : [seed!.valueFrom!.secretKeyRef],
      );
    }
  });

  it("runs consensus in its own Deployment; critics only judge, with no consensus flag or setting", () => {
    const objects = objectsOf(overlay);
    const consensus = podSpecOf(find(objects, "Deployment", "consensus")).containers[0]!;
    expect(consensus.args?.[0]).toBe("consensus");
    expect(consensus.envFrom?.some((f) => f.configMapRef?.name === "autodidact-consensus")).toBe(true);
    expect(Object.keys(criticOptions).filter((k) => /consensus/i.test(k))).toEqual([]);
    const critics = autodidactDeployments(objects).filter((d) => podSpecOf(d).containers[0]!.args?.[0] === "critic");
    expect(critics.length).toBeGreaterThan(0);
    for (const c of critics) {
      const container = podSpecOf(c).containers[0]!;
      expect(container.args?.filter((a) => /consensus/i.test(a)), c.metadata.name).toEqual([]);
      expect(container.envFrom?.some((f) => f.configMapRef?.name === "autodidact-consensus"), c.metadata.name).toBe(false);
    }
  });

  it("names one critic per Deployment, each with its own id and kind, and mounts the likelihood critic's model reference", () => {
    const objects = objectsOf(overlay);
    const critics = autodidactDeployments(objects).filter((d) => podSpecOf(d).containers[0]!.args?.[0] === "critic");
    const ids = critics.map((d) => flag(podSpecOf(d).containers[0]!.args, "critic-id"));
    expect(new Set(ids).size).toBe(critics.length);
    expect(critics.map((d) => d.metadata.name).sort()).toEqual(ids.map((id) => `critic-${id}`).sort());
    const consensus = find(objects, "ConfigMap", "autodidact-consensus")["data"] as Record<string, string>;
    expect(consensus["AUTODIDACT_CONSENSUS_CRITICS"]?.split(",").sort()).toEqual([...ids].sort());
    const lk = podSpecOf(find(objects, "Deployment", "critic-likelihood"));
    const file = flag(lk.containers[0]!.args, "model-file")!;
    const mount = lk.containers[0]!.volumeMounts!.find((m) => file.startsWith(m.mountPath + "/"))!;
    const vol = lk.volumes!.find((v) => v.name === mount.name)!;
    const ref = find(objects, "ConfigMap", vol.configMap!.name)["data"] as Record<string, string>;
    expect(ref[file.slice(mount.mountPath.length + 1)]).toMatch(/^[\w.-]+@\d+$|^\//);
    // no subPath: kubelet only refreshes whole ConfigMap volumes, which the live swap relies on
    expect(JSON.stringify(lk.containers[0]!.volumeMounts)).not.toContain("subPath");
  });

  it("mounts the gRPC TLS and access-list Secrets as optional volumes, and turns neither on by default", () => {
    for (const d of autodidactDeployments(objectsOf(overlay))) {
      const pod = podSpecOf(d);
      const c = pod.containers[0]!;
      for (const [volume, secret, path] of [["grpc-tls", "autodidact-grpc-tls", "/etc/autodidact/tls"], ["grpc-auth", "autodidact-grpc-auth", "/etc/autodidact/auth"]] as const) {
        expect(pod.volumes?.find((v) => v.name === volume)?.secret, `${d.metadata.name} ${volume}`).toEqual({ secretName: secret, optional: true });
        expect(c.volumeMounts?.find((m) => m.name === volume)?.mountPath).toBe(path);
      }
      expect(JSON.stringify(c.envFrom ?? [])).not.toContain("autodidact-grpc-security");
      expect((c.args ?? []).some((a) => a.startsWith("--tls") || a.startsWith("--auth"))).toBe(false);
    }
  });
});

describe("overlay dev-secure (components/grpc-security)", () => {
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    objects = await renderOverlay("dev-secure");
  });

  it("validates, points every service at the mounted TLS and access-list files, and probes a plain-text health port", async () => {
    for (const o of objects) {
      const Model = await modelFor(o);
      expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
    const env = find(objects, "ConfigMap", "autodidact-grpc-security")["data"] as Record<string, string>;
    const deployments = autodidactDeployments(objects);
    expect(deployments).toHaveLength(8);
    for (const d of deployments) {
      const pod = podSpecOf(d);
      const c = pod.containers[0]!;
      expect(c.envFrom?.map((f) => f.configMapRef?.name)).toContain("autodidact-grpc-security");
      for (const key of ["AUTODIDACT_TLS_CERT", "AUTODIDACT_TLS_KEY", "AUTODIDACT_TLS_CA", "AUTODIDACT_AUTH_FILE"]) {
        const file = env[key]!;
        const mount = c.volumeMounts?.find((m) => file.startsWith(m.mountPath + "/"));
        expect(mount, `${d.metadata.name}: ${key}=${file} is inside a mount`).toBeDefined();
        expect(pod.volumes?.find((v) => v.name === mount!.name)?.secret?.secretName).toMatch(/^autodidact-grpc-(tls|auth)$/);
      }
      const healthPort = Number(flag(c.args, "health-port"));
      expect(healthPort).toBe(50052);
      expect(c.ports?.map((p) => p.containerPort)).toContain(healthPort);
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) expect(probe?.grpc?.port, d.metadata.name).toBe(healthPort);
    }
  });
});

describe("overlay specifics", () => {
  const modelServices = ["generator", "trainer", "critic-likelihood"];

  it("dev runs one replica of everything on the CPU image, without GPUs or KEDA", () => {
    const objects = objectsOf("dev");
    for (const d of objects.filter((o) => o.kind === "Deployment")) expect((d["spec"] as { replicas: number }).replicas, d.metadata.name).toBe(1);
    for (const d of autodidactDeployments(objects)) expect(podSpecOf(d).containers[0]!.image).toBe("autodidact:dev");
    expect(JSON.stringify(objects)).not.toContain("nvidia.com/gpu");
    expect(objects.some((o) => o.kind === "ScaledObject")).toBe(false);
  });

  it("gpu puts the model services on GPU nodes with one GPU each and the CUDA image, the rest without GPUs", () => {
    const objects = objectsOf("gpu");
    for (const d of autodidactDeployments(objects)) {
      const pod = podSpecOf(d);
      const c = pod.containers[0]!;
      expect(c.image).toBe("autodidact:cuda");
      if (modelServices.includes(d.metadata.name)) {
        expect(Number(c.resources?.limits?.["nvidia.com/gpu"]), d.metadata.name).toBe(1);
        expect(pod.nodeSelector?.["nvidia.com/gpu.present"]).toBe("true");
        expect(pod.tolerations?.some((t) => t.key === "nvidia.com/gpu" && t.operator === "Exists")).toBe(true);
        expect(c.env?.find((e) => e.name === "AUTODIDACT_EXECUTION_PROVIDER")?.value).toBe("auto");
        // the strategic merge kept the base container intact
        expect(c.args?.length).toBeGreaterThan(2);
        expect(c.readinessProbe?.grpc?.port).toBeDefined();
      } else {
        expect(c.resources?.limits?.["nvidia.com/gpu"], d.metadata.name).toBeUndefined();
      }
    }
  });

  it("gpu scales each critic with KEDA on the lag of its own JetStream durable on SAMPLES", () => {
    const objects = objectsOf("gpu");
    const critics = autodidactDeployments(objects).filter((d) => podSpecOf(d).containers[0]!.args?.[0] === "critic");
    const scaled = objects.filter((o) => o.kind === "ScaledObject");
    expect(scaled.length).toBe(critics.length);
    for (const so of scaled) {
      const spec = so["spec"] as {
        scaleTargetRef: { name: string; kind?: string };
        minReplicaCount: number;
        maxReplicaCount: number;
        triggers: { type: string; metadata: Record<string, string> }[];
      };
      const target = find(objects, "Deployment", spec.scaleTargetRef.name);
      const criticId = flag(podSpecOf(target).containers[0]!.args, "critic-id")!;
      expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(spec.maxReplicaCount).toBeGreaterThan(spec.minReplicaCount);
      expect(spec.triggers).toHaveLength(1);
      const t = spec.triggers[0]!;
      expect(t.type).toBe("nats-jetstream");
      expect(t.metadata["stream"]).toBe(Durables.critic.stream);
      expect(t.metadata["consumer"]).toBe(Durables.critic.name(criticId));
      expect(Number(t.metadata["lagThreshold"])).toBeGreaterThan(0);
      expect(t.metadata["natsServerMonitoringEndpoint"]).toMatch(/^nats-headless\.autodidact\.svc\.cluster\.local:8222$/);
    }
  });

  it("the schema check rejects a broken object (it is not vacuous)", async () => {
    const d = structuredClone(find(objectsOf("dev"), "Deployment", "generator"));
    podSpecOf(d).containers[0]!.ports![0]!.containerPort = "grpc" as unknown as number;
    const Model = await modelFor(d);
    expect(() => new Model(d).validate()).toThrow(/containerPort/);
    const so = structuredClone(find(objectsOf("gpu"), "ScaledObject", "critic-rules"));
    delete (so["spec"] as Record<string, unknown>)["scaleTargetRef"];
    const ScaledObject = await modelFor(so);
    expect(() => new ScaledObject(so).validate()).toThrow(/scaleTargetRef/);
  });
});

describe("NATS Helm values and images", () => {
  it("asks the official chart for a 3-node JetStream cluster with file storage and the monitoring port KEDA reads", async () => {
    const values = parse(await readFile(join(REPO_ROOT, "deploy/k8s/nats/values.yaml"), "utf8")) as {
      fullnameOverride: string;
      config: { cluster: { enabled: boolean; replicas: number }; jetstream: { enabled: boolean; fileStore: { enabled: boolean } }; monitor: { enabled: boolean; port: number } };
    };
    expect(values.fullnameOverride).toBe("nats");
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(values.config.jetstream.enabled).toBe(true);
    expect(values.config.jetstream.fileStore.enabled).toBe(true);
    expect(values.config.monitor).toMatchObject({ enabled: true, port: 8222 });
  });

  it("builds non-root images from a dependency stage; the GPU image installs the CUDA 12 provider", async () => {
    for (const file of ["Dockerfile", "Dockerfile.gpu"]) {
      const text = await readFile(join(REPO_ROOT, file), "utf8");
      const stages = text.split(/^FROM /m).slice(1);
      expect(stages.length, file).toBeGreaterThanOrEqual(2);
      const final = stages.at(-1)!;
      expect(final).toMatch(/^USER 1000:1000$/m);
      expect(final).not.toMatch(/apt-get|npm (ci|install)|build-essential/);
      expect(text).toMatch(/npm ci --omit=dev/);
      expect(final).toMatch(/ENTRYPOINT \["node", "bin\/autodidact\.mjs"\]/);
    }
    const gpu = await readFile(join(REPO_ROOT, "Dockerfile.gpu"), "utf8");
    expect(gpu).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(gpu).toMatch(/FROM \$\{CUDA_IMAGE\} AS runtime/);
    expect(gpu).toMatch(/ARG CUDA_IMAGE=nvidia\/cuda:12\.[\d.]+-cudnn-runtime/);
  });
});

describe("image contents", () => {
  it("the files the Dockerfile copies (minus .dockerignore) are enough to load every service", async () => {
    const dockerfile = await readFile(join(REPO_ROOT, "Dockerfile"), "utf8");
    const final = dockerfile.split(/^FROM /m).at(-1)!;
    const sources = [...final.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources).toEqual(expect.arrayContaining(["bin", "src", "services", "package.json"]));
    const ignore = (await readFile(join(REPO_ROOT, ".dockerignore"), "utf8")).split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    const ignored = (rel: string): boolean =>
      ignore.some((p) => (p.startsWith("**/*") ? rel.endsWith(p.slice(4)) : rel === p || rel.startsWith(p + "/")));
    const image = await mkdtemp(join(tmpdir(), "image-"));
    try {
      for (const s of sources) {
        await cp(join(REPO_ROOT, s), join(image, s), { recursive: true, filter: (from) => !ignored(from.slice(REPO_ROOT.length)) });
      }
      const copied = (await readdir(image, { recursive: true })).map(String);
      expect(copied.some((f) => f.endsWith(".test.ts"))).toBe(false);
      expect(copied).toContain(join("services", "critic", "critic-service.ts"));
      // The conductor's init container seeds its models volume from the image's models/.
      expect(copied).toContain(join("models", "addition-base", "lineage-1", "model.safetensors"));
      await symlink(join(REPO_ROOT, "node_modules"), join(image, "node_modules"));
      await Promise.all(
        ["generator", "critic", "trainer", "monitor", "conductor"].map(async (service) => {
          const { stdout } = await promisify(execFile)(process.execPath, ["bin/autodidact.mjs", service, "--help"], { cwd: image });
          expect(stdout, service).toContain(`autodidact ${service} [options]`);
        }),
      );
    } finally {
      await rm(image, { recursive: true, force: true });
    }
  }, 60_000);
});
