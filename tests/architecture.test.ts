// Architecture rules over the source text and the topology's declarations: one owner per shared
// fact. The registry bucket is opened and its keys are spelled only by src/domain/registry (the
// topology declares its key spaces); every durable consumer a service binds comes from
// src/domain/topology and is permitted for its role by the permissions derived from it.
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { permits } from "../src/platform/nats-auth/index.js";
import { DURABLES, Durables, MESH_ROLES, natsPermissions, RegistryKeySpaces, type KeySpace, type MeshIdentity, type MeshRole } from "../src/domain/topology/index.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface SourceFile {
  /** Path from the repository root, with `/`. */
  readonly path: string;
  readonly text: string;
}

async function walk(dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, out);
    else if (entry.isFile() && entry.name.endsWith(".ts")) out.push(path);
  }
}

/** Every TypeScript file of the repository but generated code. */
async function sources(): Promise<SourceFile[]> {
  const paths: string[] = [];
  for (const dir of ["src", "services", "apps", "bench", "scripts", "tests"]) await walk(join(ROOT, dir), paths).catch(() => undefined);
  const files = await Promise.all(paths.map(async (p) => ({ path: relative(ROOT, p).split("\\").join("/"), text: await readFile(p, "utf8") })));
  // Generated code, and this file (it spells the patterns it looks for).
  return files.filter((f) => !f.path.startsWith("src/gen/") && f.path !== "tests/architecture.test.ts");
}

const isTest = (path: string): boolean => path.endsWith(".test.ts") || path.startsWith("tests/") || /(^|\/)test-[a-z-]+\.ts$/.test(path);
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `path:line: text` of every match of `pattern` in the files. */
function findings(files: readonly SourceFile[], pattern: RegExp): string[] {
  const out: string[] = [];
  for (const f of files) {
    f.text.split("\n").forEach((line, i) => {
      if (pattern.test(line)) out.push(`${f.path}:${i + 1}: ${line.trim()}`);
    });
  }
  return out;
}

let files: SourceFile[] = [];
beforeAll(async () => {
  files = await sources();
  // The walk found the modules these rules are about (an empty walk would pass everything).
  expect(files.some((f) => f.path === "src/domain/registry/registry.ts")).toBe(true);
  expect(files.some((f) => f.path === "services/monitor/monitor.ts")).toBe(true);
});

describe("one owner of the registry bucket: src/domain/registry", () => {
  /** The owner, and the topology that declares the bucket, its key spaces and the permissions over them. */
  const owners = (path: string): boolean => path.startsWith("src/domain/registry/") || path.startsWith("src/domain/topology/");

  it("no other module opens the registry bucket or the checkpoints object store, nor a bucket through nats.js itself", () => {
    const opening = new RegExp(
      [
        String.raw`KvBuckets\.Registry`,
        String.raw`ObjectBuckets\.Checkpoints`,
        String.raw`openKv\([^)]*["'\x60]registry["'\x60]`,
        String.raw`openObjectStore\([^)]*["'\x60]checkpoints["'\x60]`,
      ].join("|"),
    );
    expect(findings(files.filter((f) => !owners(f.path)), opening)).toEqual([]);
    // nats.js's own KV / object store managers only inside the bus runtime (which has no bucket names).
    const raw = /new Kvm\(|new Objm\(|\.views\.(kv|os)\(/;
    expect(findings(files.filter((f) => !f.path.startsWith("src/platform/bus/")), raw)).toEqual([]);
  });

  it("no other module spells a registry key (every key space declared in the topology)", () => {
    const spaces: KeySpace[] = Object.values(RegistryKeySpaces);
    expect(spaces.length).toBeGreaterThanOrEqual(7);
    // A string or template literal that starts like a key of a key space (the checkpoint prefix and a dot,
    // the gating policy's whole key, ...).
    const starts = spaces.map((k) => escape(k.prefix) + (k.single === true ? String.raw`["'\x60.]` : String.raw`\.`));
    const key = new RegExp(String.raw`["'\x60](${starts.join("|")})`);
    expect(findings(files.filter((f) => !owners(f.path)), key)).toEqual([]);
    // Raw NATS subjects or streams of the bucket: only a test proving the server refuses writes that
    // bypass the owner (with the trainer's credentials) may spell them.
    const raw = /\$KV\.registry\b|KV_registry|OBJ_checkpoints|\$O\.checkpoints\b/;
    expect(findings(files.filter((f) => !owners(f.path) && f.path !== "tests/nats-auth.test.ts"), raw)).toEqual([]);
  });
});

describe("every durable consumer comes from the topology and is permitted for its role", () => {
  /** An identity of the role a durable is declared for, with the parameter that names it. */
  const identityFor = (role: MeshRole): MeshIdentity => (role === "critic" ? { name: "critic-x", role, criticId: "x" } : { name: role, role });
  const pullSubjects = (stream: string, name: string): string[] => [
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${name}`,
    `$JS.ACK.${stream}.${name}.1.1.1.1.1`,
  ];

  it("natsPermissions grants each declared durable to its role, and no other service role may pull from it", () => {
    expect(DURABLES.length).toBeGreaterThanOrEqual(6);
    for (const d of DURABLES) {
      const name = d.grantedName(identityFor(d.role));
      expect(name, d.key).not.toBe("*");
      for (const subject of pullSubjects(d.stream, name)) {
        expect(permits(natsPermissions(identityFor(d.role)), "publish", subject), `${d.role} may ${subject}`).toBe(true);
        for (const other of MESH_ROLES.filter((r) => r !== d.role && r !== "admin")) {
          expect(permits(natsPermissions(identityFor(other)), "publish", subject), `${other} may not ${subject}`).toBe(false);
        }
      }
    }
  });

  it("the durables the services name are the declared ones", () => {
    const declared = new Set(DURABLES.map((d) => d.grantedName(identityFor(d.role))));
    expect(declared).toEqual(
      new Set([
        Durables.critic.name("x"),
        Durables.consensusVerdicts.name,
        Durables.consensusSamples.name,
        Durables.trainer.name,
        Durables.monitorCandidates.name,
        Durables.monitorRoundStats.name,
      ]),
    );
  });

  /**
   * Modules that bind a durable without taking the spec from `Durables`, each with why: the consensus
   * worker takes configurable durable names (defaults `Durables.consensusVerdicts.name` /
   * `consensusSamples.name`) and, with `tasks`, one durable per task; the test below holds any
   * literal default to the declared names.
   */
  const EXCEPTIONS: Record<string, string> = {
    "services/consensus/worker.ts": "consensus worker: configurable and per-task durable names",
    "services/consensus/intake.ts": "consensus worker's intake: binds the specs worker.ts builds",
  };

  it("every consume / ensureConsumer call of a service, domain module or application takes its spec from Durables", () => {
    const production = files.filter((f) => !isTest(f.path) && /^(services|src\/domain|apps)\//.test(f.path) && !f.path.startsWith("src/domain/topology/"));
    const offending: string[] = [];
    for (const f of production) {
      if (EXCEPTIONS[f.path] !== undefined) continue;
      for (const m of f.text.matchAll(/\b(consume|ensureConsumer)\(\s*[\w.]+\s*,\s*/g)) {
        // The spec argument: up to the first top-level comma after it.
        const rest = f.text.slice(m.index + m[0].length);
        let depth = 0;
        let end = 0;
        for (; end < rest.length; end++) {
          const c = rest[end]!;
          if ("({[".includes(c)) depth++;
          else if (")}]".includes(c)) depth--;
          if ((c === "," && depth === 0) || depth < 0) break;
        }
        const spec = rest.slice(0, end);
        if (!/\bDurables\.\w+\.spec\(/.test(spec)) offending.push(`${f.path}:${f.text.slice(0, m.index).split("\n").length}: ${m[1]}(…, ${spec.trim().slice(0, 80)})`);
      }
    }
    expect(offending).toEqual([]);
    // A service binds only durables declared for its own role (services/<role>/), so its identity holds the grant.
    const misplaced: string[] = [];
    for (const f of production.filter((x) => x.path.startsWith("services/"))) {
      const service = f.path.split("/")[1]!;
      if (!(MESH_ROLES as readonly string[]).includes(service)) continue;
      for (const m of f.text.matchAll(/\bDurables\.(\w+)\.spec\(/g)) {
        const declared = DURABLES.find((d) => d.key === m[1]);
        if (declared?.role !== service) misplaced.push(`${f.path}: Durables.${m[1]} is declared for ${declared?.role ?? "nobody"}, bound by ${service}`);
      }
    }
    expect(misplaced).toEqual([]);
    // Nothing creates a durable by hand either.
    expect(findings(files.filter((f) => !isTest(f.path) && !f.path.startsWith("src/platform/bus/")), /durable_name/)).toEqual([]);
  });

  it("the exceptions' durable defaults are declared durables", () => {
    const names = new Set<string>(DURABLES.flatMap((d) => ("name" in d && typeof d.name === "string" ? [d.name] : [])));
    for (const f of files.filter((x) => EXCEPTIONS[x.path] !== undefined)) {
      const defaults = [...f.text.matchAll(/\w*[dD]urable\w*\s*\?\?\s*"([^"]+)"/g)].map((m) => m[1]!);
      for (const d of defaults) expect(names.has(d), `${f.path}: default durable "${d}" is not declared in src/domain/topology`).toBe(true);
    }
  });
});

/** The repository modules `path` imports, directly or through others (relative imports only). */
function importClosure(all: readonly SourceFile[], path: string): Set<string> {
  const byPath = new Map(all.map((f) => [f.path, f]));
  const seen = new Set<string>();
  const visit = (p: string): void => {
    if (seen.has(p)) return;
    seen.add(p);
    const file = byPath.get(p);
    if (file === undefined) return;
    const dir = p.split("/").slice(0, -1);
    for (const m of file.text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      const parts = [...dir];
      for (const seg of m[1]!.split("/")) {
        if (seg === "..") parts.pop();
        else if (seg !== ".") parts.push(seg);
      }
      visit(parts.join("/").replace(/\.js$/, ".ts"));
    }
  };
  visit(path);
  return seen;
}

describe("the conductor never reads ground truth", () => {
  /** Modules that hold a task's verifier or held-out answers (or judge with them). */
  const groundTruth = (p: string): boolean =>
    p.startsWith("src/domain/tasks/") || p.startsWith("services/monitor/") || p.startsWith("services/critic/") || p.startsWith("src/domain/serving/");

  it("the curriculum imports nothing that holds a verifier or held-out data", () => {
    const closure = importClosure(files, "services/conductor/curriculum.ts");
    expect(closure.size).toBeGreaterThan(1);
    expect([...closure].filter(groundTruth)).toEqual([]);
    // Only generated types besides itself: it is pure.
    expect([...closure].filter((p) => p !== "services/conductor/curriculum.ts" && !p.startsWith("src/gen/"))).toEqual([]);
  });

  it("no module of the conductor does", () => {
    const modules = files.filter((f) => f.path.startsWith("services/conductor/") && !isTest(f.path)).map((f) => f.path);
    expect(modules).toContain("services/conductor/conductor-service.ts");
    for (const m of modules) expect([...importClosure(files, m)].filter(groundTruth), m).toEqual([]);
  });

  it("no module of the conductor reads a verifier, a held-out split or a result over the wire either", () => {
    // The monitor's replies carry results (the test split, verifier-judged round statistics): the
    // conductor may read a gate's outcome and reasons, never these fields or RPCs.
    const conductor = files.filter((f) => f.path.startsWith("services/conductor/") && !isTest(f.path));
    expect(conductor.length).toBeGreaterThan(5);
    const reads = /\.(verifier|heldOut|splits|frontier|perDifficulty|labelAccuracy|labelFree)\b|heldOut\(|[Gg]etRoundStats|\.evaluate\(|\bevaluation\.(accuracy|loss)\b/;
    expect(findings(conductor, reads)).toEqual([]);
    // The rule can fire: the same pattern finds these reads where they belong (the monitor).
    expect(findings(files.filter((f) => f.path.startsWith("services/monitor/")), reads).length).toBeGreaterThan(0);
  });
});

describe("one owner of the conductor bucket: services/conductor/run-store.ts", () => {
  it("no other module opens the conductor bucket or builds its keys", () => {
    const owner = (p: string): boolean => p === "services/conductor/run-store.ts" || p.startsWith("src/domain/topology/");
    expect(findings(files.filter((f) => !owner(f.path)), /KvBuckets\.Conductor|ConductorKeySpaces|openKv\([^)]*["'\x60]conductor["'\x60]|\$KV\.conductor\b|KV_conductor/)).toEqual([]);
    expect(findings(files.filter((f) => f.path === "services/conductor/run-store.ts"), /ConductorKeySpaces\.(run|lease)\.prefix/).length).toBeGreaterThanOrEqual(2);
  });
});
