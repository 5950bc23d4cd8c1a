// Live critic swap the way a cluster does it: the likelihood critic runs from its rendered manifest
// with its model reference ConfigMap mounted as a volume; the test edits the ConfigMap's file the way
// kubelet does (new timestamped folder, atomic `..data` symlink swap) while Score calls run in a loop,
// and the same process switches models with no failed request. A bad reference changes nothing.
import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../src/platform/bus/index.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { SampleSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { createClient, type RpcClient } from "../src/platform/rpc/index.js";
import { saveTinyDecoder } from "../src/domain/serving/test-models.js";
import { find, launchContainer, podSpecOf, renderOverlay, writeConfigMapVolume, type LaunchedContainer } from "./deploy-support.js";

describe("critic model swap through its mounted ConfigMap", () => {
  let nats: NatsServerProcess;
  let dir: string;
  let critic: LaunchedContainer;
  let client: RpcClient<typeof CriticService>;
  let refDir: string;
  let versionA: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), "deploy-swap-"));
    await saveTinyDecoder(join(dir, "a"), 1);
    await saveTinyDecoder(join(dir, "b"), 2);
    const objects = await renderOverlay("dev");
    const deployment = find(objects, "Deployment", "critic-likelihood");
    const pod = podSpecOf(deployment);
    const refVolume = pod.volumes!.find((v) => v.configMap?.name === "critic-likelihood-model")!;
    critic = await launchContainer(objects, deployment, {
      natsUrl: nats.url,
      configMapData: { "critic-likelihood-model": { model: join(dir, "a") } },
    });
    refDir = critic.volumes.get(refVolume.name)!;
    client = createClient(CriticService, `127.0.0.1:${critic.ready.grpcPort}`);
    versionA = await servedVersion();
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await critic?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  let n = 0;
  const sample = () => create(SampleSchema, { id: `swap-${n++}`, task: "addition", prompt: "21+43=", completion: "64" });
  const servedVersion = async (): Promise<string> => (await client.getInfo({})).models[0]?.version ?? "";

  /** Scores in `loops` parallel loops until `until` resolves; returns every loop's versions and the failures. */
  async function scoreDuring(until: () => Promise<void>, loops = 2): Promise<{ versions: string[][]; failures: unknown[] }> {
    let stop = false;
    const failures: unknown[] = [];
    const loop = async (): Promise<string[]> => {
      const versions: string[] = [];
      while (!stop) {
        try {
          versions.push((await client.score({ sample: sample() })).criticModelVersion);
        } catch (err) {
          failures.push(err);
        }
      }
      return versions;
    };
    const running = Array.from({ length: loops }, loop);
    try {
      await until();
    } finally {
      stop = true;
    }
    return { versions: await Promise.all(running), failures };
  }

  async function waitFor(pred: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await pred())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; critic stderr: ${critic.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("swaps to the edited reference in the same process with zero failed Score calls", async () => {
    const pid = critic.process.pid;
    const before = await servedVersion();
    expect(before).toMatch(/^sha256:/);
    expect(before).toBe(versionA);
    let after = "";
    const { versions, failures } = await scoreDuring(async () => {
      await new Promise((r) => setTimeout(r, 300));
      await writeConfigMapVolume(refDir, { model: join(dir, "b") });
      await waitFor(async () => (after = await servedVersion()) !== before, "the swap");
      await new Promise((r) => setTimeout(r, 300));
    });
    expect(failures).toEqual([]);
    expect(after).toMatch(/^sha256:/);
    expect(after).not.toBe(before);
    for (const v of versions) {
      expect(v.length).toBeGreaterThan(0);
      expect(v[0]).toBe(before);
      expect(v.at(-1)).toBe(after);
      expect(v.filter((x, i) => i > 0 && x !== v[i - 1]).length).toBe(1);
    }
    expect(critic.process.pid).toBe(pid);
    expect(critic.process.exitCode).toBeNull();
  }, 60_000);

  it("keeps serving the current model when the reference names a model that cannot load, then takes the next good one", async () => {
    const current = await servedVersion();
    const { failures } = await scoreDuring(async () => {
      await writeConfigMapVolume(refDir, { model: join(dir, "missing-model") });
      await waitFor(async () => critic.stderr().includes("missing-model"), "the failed swap to be logged");
    });
    expect(failures).toEqual([]);
    expect(await servedVersion()).toBe(current);
    // back to the first model: the version returns to model a's digest
    await writeConfigMapVolume(refDir, { model: join(dir, "a") });
    await waitFor(async () => (await servedVersion()) !== current, "the swap back");
    const back = await servedVersion();
    expect(back).toBe(versionA);
    const score = await client.score({ sample: sample() });
    expect(score.criticModelVersion).toBe(back);
    expect(critic.process.exitCode).toBeNull();
  }, 60_000);
});
