// `autodidact nats-auth` (the Kubernetes secret set) and `autodidact topology` as an operator runs
// them: the generated server config and Helm values both load into a real nats-server, the admin seed
// creates the topology, and a critic Deployment's seed is held to its own durable.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, consume, startNatsServer, type NatsServerProcess } from "../src/platform/bus/index.js";
import { AutodidactError, Code } from "../src/platform/errors/index.js";
import { resolveNatsCredentials } from "../src/platform/nats-auth/index.js";
import { Streams, Subjects } from "../src/domain/topology/index.js";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));
let dir: string;
const servers: NatsServerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "autodidact-nats-auth-cli-"));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NATS_URL;
  return spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8", timeout: 60_000 });
};

describe("autodidact nats-auth + topology", () => {
  it("generates one seed per Deployment, a server config and Helm values that nats-server accepts", async () => {
    const out = join(dir, "auth");
    const gen = run(["nats-auth", "--out", out]);
    expect(gen.status, gen.stderr).toBe(0);
    const names = ["admin", "generator", "critic-rules", "critic-novelty", "critic-likelihood", "consensus", "trainer", "monitor", "conductor"];
    for (const n of names) {
      expect((await stat(join(out, `${n}.nk`))).mode & 0o777).toBe(0o600);
      expect(gen.stdout).toContain(`create secret generic autodidact-nats-${n} --from-file=nkey-seed=${join(out, `${n}.nk`)}`);
    }
    // The printed commands name files, never seeds.
    for (const n of names) expect(gen.stdout).not.toContain((await readFile(join(out, `${n}.nk`), "utf8")).trim());

    // The Helm values' users, as a plain nats-server config (NATS config is a superset of JSON).
    const values = JSON.parse(await readFile(join(out, "nats-auth-values.json"), "utf8")) as { config: { merge: { authorization: unknown } } };
    const fromValues = join(dir, "from-values.conf");
    await writeFile(fromValues, `authorization: ${JSON.stringify(values.config.merge.authorization)}\n`);

    for (const configFile of [join(out, "nats-server.conf"), fromValues]) {
      const server = await startNatsServer({ configFile });
      servers.push(server);
      // Anonymous: refused. Admin: creates the topology.
      const anonymous = run(["topology", "--nats-url", server.url]);
      expect(anonymous.status).toBe(1);
      expect(anonymous.stderr).toMatch(/refused the connection/);
      const topo = run(["topology", "--nats-url", server.url, "--nats-nkey-file", join(out, "admin.nk")]);
      expect(topo.status, topo.stderr).toBe(0);
      expect(topo.stdout).toContain("created: stream SAMPLES");
      expect(topo.stdout).toContain("created: kv registry");

      // The rules critic's seed consumes with its own durable only.
      const credentials = (await resolveNatsCredentials({ natsNkeyFile: join(out, "critic-rules.nk") }))!;
      const bus = await connectBus({ servers: server.url, name: "critic-rules", credentials });
      try {
        const own = await consume(bus, { stream: Streams.Samples, durable: "critic-rules", filterSubject: Subjects.allProposed }, async () => undefined);
        await own.stop();
        const other = await consume(bus, { stream: Streams.Samples, durable: "critic-novelty", filterSubject: Subjects.allProposed }, async () => undefined).then(
          () => null,
          (e: unknown) => e,
        );
        expect(other).toBeInstanceOf(AutodidactError);
        expect((other as AutodidactError).code).toBe(Code.PermissionDenied);
      } finally {
        await bus.close();
      }
    }
  }, 120_000);

  it("refuses nats-auth without --out (exit 2)", () => {
    const res = run(["nats-auth"]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/--out/);
  });
});
