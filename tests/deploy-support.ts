// Test support for deploy/k8s: renders the kustomize overlays with kubectl, and runs a rendered
// container as a local process the way a kubelet would run it (command, args, env with envFrom and
// fieldRefs, ports, ConfigMap volumes written with the kubelet's atomic symlink layout), with only the
// cluster-specific parts replaced for localhost: NATS URL, ports and mount paths.
import { execFile } from "node:child_process";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { freePort } from "../src/platform/bus/index.js";
import type { ReadyLine } from "../src/platform/host/index.js";

/** The repository root: the image's WORKDIR (/app) holds the same files. */
export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
/** Overlays that must render and run. */
export const OVERLAYS = ["dev", "gpu"] as const;

/** A rendered Kubernetes object (loosely typed: the tests validate it against the schemas). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The parts of a container spec the harness reads. */
export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: {
      fieldRef?: { fieldPath: string };
      configMapKeyRef?: { name: string; key: string };
      secretKeyRef?: { name: string; key: string; optional?: boolean };
    };
  }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { grpc?: { port: number } };
  livenessProbe?: { grpc?: { port: number } };
  startupProbe?: { grpc?: { port: number } };
  volumeMounts?: { name: string; mountPath: string }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
}

/** The pod template parts the harness reads. */
export interface PodSpec {
  containers: ContainerSpec[];
  initContainers?: ContainerSpec[];
  volumes?: { name: string; configMap?: { name: string }; emptyDir?: object; persistentVolumeClaim?: { claimName: string }; secret?: { secretName: string; optional?: boolean } }[];
  nodeSelector?: Record<string, string>;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
}

/** kubectl from the PATH (or $KUBECTL): Debian's kubernetes-client or any newer client. */
export const KUBECTL = process.env["KUBECTL"] ?? "kubectl";

/** Renders `deploy/k8s/overlays/<overlay>` with `kubectl kustomize` and parses every object. */
export async function renderOverlay(overlay: string): Promise<K8sObject[]> {
  const { stdout } = await promisify(execFile)(KUBECTL, ["kustomize", join(REPO_ROOT, "deploy", "k8s", "overlays", overlay)], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return parseAllDocuments(stdout)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The pod spec of a rendered Deployment. */
export function podSpecOf(deployment: K8sObject): PodSpec {
  return (deployment["spec"] as { template: { spec: PodSpec } }).template.spec;
}

/** Finds one rendered object by kind and name, failing loudly when it is missing. */
export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (o === undefined) throw new Error(`rendered manifests have no ${kind} ${name}`);
  return o;
}

/** Deployments running the Autodidact image (not the collector or Jaeger). */
export function autodidactDeployments(objects: readonly K8sObject[]): K8sObject[] {
  return objects.filter((o) => o.kind === "Deployment" && podSpecOf(o).containers.some((c) => /^autodidact(:|$)/.test(c.image)));
}

/**
 * Writes a ConfigMap volume into `dir` as kubelet's atomic writer does: files live in a timestamped
 * folder, `..data` points at it, and each key is a symlink through `..data`. Calling it again swaps
 * `..data` with one rename, which is how a ConfigMap edit reaches a running pod.
 */
export async function writeConfigMapVolume(dir: string, data: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, "_")}.${Math.random().toString(36).slice(2, 8)}`;
  await mkdir(join(dir, stamp));
  for (const [k, v] of Object.entries(data)) await writeFile(join(dir, stamp, k), v);
  const old = (await readdir(dir)).filter((n) => n.startsWith("..") && n !== "..data" && n !== stamp);
  await symlink(stamp, join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const k of Object.keys(data)) {
    await symlink(join("..data", k), join(dir, k)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  }
  for (const o of old) await rm(join(dir, o), { recursive: true, force: true });
}

/** What to replace when running a container locally. */
export interface LaunchOptions {
  natsUrl: string;
  /** ConfigMap data to use instead of the rendered one (e.g. a local model path), by ConfigMap name. */
  configMapData?: Record<string, Record<string, string>>;
  /** Contents of Secret volumes, by Secret name (written like a ConfigMap volume); absent ones stay empty (optional). */
  secretData?: Record<string, Record<string, string>>;
  /** Extra environment (e.g. OTEL_SDK_DISABLED). */
  extraEnv?: Record<string, string>;
  /**
   * Cluster addresses of other containers (`monitor:50051`) and where they listen here
   * (`127.0.0.1:<port>`): replaced in args and env, as cluster DNS would resolve them.
   */
  hosts?: Record<string, string>;
  /** Called with each volume's local folder before any container of the pod runs (e.g. to put models in). */
  prepareVolume?: (name: string, dir: string) => Promise<void>;
}

/** A container running as a local process. */
export interface LaunchedContainer {
  readonly process: ChildProcess;
  readonly ready: ReadyLine;
  /** Container port → local port. */
  readonly ports: ReadonlyMap<number, number>;
  /** Volume name → local folder. */
  readonly volumes: ReadonlyMap<string, string>;
  /** The exact argv and env it was started with. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  stderr(): string;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
}

/** Resolves a container's environment as kubelet would: envFrom ConfigMaps, then env (later wins); `overrides` replace ConfigMaps' data. */
export function containerEnv(objects: readonly K8sObject[], container: ContainerSpec, podName: string, overrides: Record<string, Record<string, string>> = {}): Record<string, string> {
  const configMap = (name: string): Record<string, string> => overrides[name] ?? (find(objects, "ConfigMap", name)["data"] as Record<string, string> | undefined) ?? {};
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) if (from.configMapRef) Object.assign(env, configMap(from.configMapRef.name));
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
    else if (e.valueFrom?.configMapKeyRef) {
      const v = configMap(e.valueFrom.configMapKeyRef.name)[e.valueFrom.configMapKeyRef.key];
      if (v === undefined) throw new Error(`env ${e.name}: ConfigMap key ${e.valueFrom.configMapKeyRef.key} missing`);
      env[e.name] = v;
    } else if (e.valueFrom?.secretKeyRef) {
      // No Secret is part of the manifests (they are created per cluster): an optional reference
      // resolves to nothing, as kubelet does when the Secret is absent.
      if (e.valueFrom.secretKeyRef.optional !== true) throw new Error(`env ${e.name}: Secret ${e.valueFrom.secretKeyRef.name} is not optional`);
    } else throw new Error(`env ${e.name}: unsupported valueFrom`);
  }
  return env;
}

/**
 * Runs the first container of `deployment` as a local process and resolves once it printed its
 * ready line. Replaced for localhost: `node` by this Node binary (cwd = repo root, as WORKDIR /app),
 * NATS_URL, stream replicas (one local server), every container port by a free port (in args and
 * env), every volume mount path by a temp folder (ConfigMap volumes written there), no OTLP endpoint
 * (no collector here; Prometheus metrics stay on).
 */
export async function launchContainer(objects: readonly K8sObject[], deployment: K8sObject, options: LaunchOptions): Promise<LaunchedContainer> {
  const pod = podSpecOf(deployment);
  const container = pod.containers[0];
  if (container === undefined) throw new Error(`${deployment.metadata.name} has no container`);
  const podName = `${deployment.metadata.name}-7d9c5-x2x4q`;
  const ports = new Map<number, number>();
  for (const p of container.ports ?? []) ports.set(p.containerPort, await freePort());
  const volumes = new Map<string, string>();
  const root = await mkdtemp(join(tmpdir(), `pod-${deployment.metadata.name}-`));
  const mounts: [string, string][] = [];
  for (const m of container.volumeMounts ?? []) {
    const local = join(root, m.name);
    await mkdir(local, { recursive: true });
    const vol = pod.volumes?.find((v) => v.name === m.name);
    if (vol === undefined) throw new Error(`${deployment.metadata.name}: mount ${m.name} has no volume`);
    if (vol.configMap) {
      const data = options.configMapData?.[vol.configMap.name] ?? (find(objects, "ConfigMap", vol.configMap.name)["data"] as Record<string, string>);
      await writeConfigMapVolume(local, data);
    }
    const secret = vol.secret ? options.secretData?.[vol.secret.secretName] : undefined;
    if (secret) await writeConfigMapVolume(local, secret);
    if (!volumes.has(m.name)) await options.prepareVolume?.(m.name, local);
    volumes.set(m.name, local);
    mounts.push([m.mountPath, local]);
  }
  // Init containers' mounts of volumes the main container does not mount.
  for (const init of pod.initContainers ?? []) {
    for (const m of init.volumeMounts ?? []) {
      if (volumes.has(m.name)) continue;
      const local = join(root, m.name);
      await mkdir(local, { recursive: true });
      await options.prepareVolume?.(m.name, local);
      volumes.set(m.name, local);
    }
  }
  mounts.sort((a, b) => b[0].length - a[0].length);
  const localize = (s: string): string => {
    for (const [from, to] of mounts) if (s === from || s.startsWith(from + "/")) return to + s.slice(from.length);
    const eq = s.indexOf("=");
    if (s.startsWith("--") && eq > 0) return s.slice(0, eq + 1) + localize(s.slice(eq + 1));
    if (/^\d+$/.test(s) && ports.has(Number(s))) return String(ports.get(Number(s)));
    if (options.hosts?.[s] !== undefined) return options.hosts[s]!;
    return s;
  };
  // Init containers first, each to completion, on the same volumes (node only, like the containers).
  for (const init of pod.initContainers ?? []) {
    const initMounts = (init.volumeMounts ?? []).map((m): [string, string] => [m.mountPath, volumes.get(m.name)!]).sort((a, b) => b[0].length - a[0].length);
    const at = (x: string): string => {
      for (const [from, to] of initMounts) if (x === from || x.startsWith(from + "/")) return to + x.slice(from.length);
      return x;
    };
    const [cmd, ...cmdArgs] = init.command ?? [];
    if (cmd !== "node") throw new Error(`${deployment.metadata.name}: init container ${init.name} command ${String(cmd)} is not node`);
    const run = spawnSync(process.execPath, [...cmdArgs, ...(init.args ?? [])].map(at), { cwd: REPO_ROOT, env: { PATH: process.env["PATH"] ?? "", HOME: root }, encoding: "utf8", timeout: 60_000 });
    if (run.status !== 0) throw new Error(`${deployment.metadata.name}: init container ${init.name} exited ${run.status}: ${run.stderr}`);
  }
  const env = containerEnv(objects, container, podName, options.configMapData);
  for (const [k, v] of Object.entries(env)) env[k] = localize(v);
  env["NATS_URL"] = options.natsUrl;
  env["AUTODIDACT_NATS_REPLICAS"] = "1";
  delete env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  Object.assign(env, { AUTODIDACT_LOG_LEVEL: "warn" }, options.extraEnv);
  const [command, ...commandArgs] = container.command ?? [];
  if (command !== "node") throw new Error(`${deployment.metadata.name}: command ${String(command)} is not node`);
  const argv = [...commandArgs, ...(container.args ?? [])].map(localize);
  const processEnv: Record<string, string> = { PATH: process.env["PATH"] ?? "", HOME: root, ...env };
  const child = spawn(process.execPath, argv, { cwd: REPO_ROOT, env: processEnv, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err = (err + d).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = await new Promise<ReadyLine>((resolve, reject) => {
    let out = "";
    const onData = (d: string): void => {
      out += d;
      for (const line of out.split("\n")) {
        if (line.startsWith('{"event":"ready"')) {
          child.stdout.off("data", onData);
          resolve(JSON.parse(line) as ReadyLine);
          return;
        }
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    void exited.then((code) => reject(new Error(`${deployment.metadata.name} exited ${code} before ready: ${err}`)));
  });
  child.stdout.resume();
  return {
    process: child,
    ready,
    ports,
    volumes,
    argv,
    env,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const code = await exited;
      await rm(root, { recursive: true, force: true });
      return code;
    },
  };
}
