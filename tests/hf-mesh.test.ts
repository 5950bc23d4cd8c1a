// Hugging Face checkpoints through the whole mesh, the way a user brings them: tiny random
// Llama-family folders (config.json, model.safetensors, a BPE tokenizer.json with Llama's special
// tokens) and a data-set pack naming the same tokenizer.json; `autodidact models import` makes each a
// lineage's base (the conductor registers it, the monitor promotes it), then one round of a run: the
// generator proposes with one, a model critic judges with the other, consensus decides, the trainer
// LoRA-trains both, the monitor gates the candidates. A candidate keeps the family, config.json and
// tensor names of its import, its adapter the PEFT module names, and it is its base plus its adapter.
import { create, fromBinary, toJsonString } from "@bufbuild/protobuf";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "./cli-support.js";
import { readJournal, startsPerRoundLineage } from "./conductor-support.js";
import { saveTinyHfCheckpoint } from "./reference/tiny-models.js";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../apps/cli/local-mesh.js";
import { connectBus, type Bus } from "../src/platform/bus/index.js";
import { resolveNatsCredentials } from "../src/platform/nats-auth/index.js";
import { CurriculumPolicy_Kind, RunSpecSchema } from "../src/gen/autodidact/v1/conductor_pb.js";
import { ConsensusKind, TimeoutOutcome } from "../src/gen/autodidact/v1/consensus_pb.js";
import { SampleSchema, VerdictSchema } from "../src/gen/autodidact/v1/sample_pb.js";
import { CriticService } from "../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../src/gen/autodidact/v1/generator_pb.js";
import { createClient } from "../src/platform/rpc/index.js";
import { createRegistry } from "../src/domain/registry/index.js";
import { Streams } from "../src/domain/topology/index.js";
import { importHfModel, loadLoraAdapter, loadModel, mergeLora } from "../src/engine/index.js";
import { readStream } from "../bench/chaos/streams.js";

const LETTERS = "abcdefgh";
const TASK = "rev-llama";
/** The generator's lineage (Llama: grouped-query attention, untied head) and the model critic's (SmolLM-shaped: tied head, one KV head). */
const MODELS = { llama: "llama", smol: "smollm" } as const;
const GEN = "llama";
const JUDGE = "smol";

/** A Llama-style BPE tokenizer.json: <unk>, <s>, </s> (no pad token, as Llama's), letters, '=', a few merges. */
function llamaStyleTokenizer(): Record<string, unknown> {
  const special = ["<unk>", "<s>", "</s>"];
  const merges = ["a b", "c d", "e f", "g h"];
  const tokens = [...special, ...LETTERS, "=", ...merges.map((m) => m.replace(" ", ""))];
  const added = special.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: "Fuse" },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges },
  };
}

/** Deterministic distinct letter strings per length: the pack's splits (reverse the letters). */
function packRows(): Record<"anchor" | "validation" | "test" | "pool", string> {
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const seen = new Set<string>();
  const words = (len: number, n: number): string[] => {
    const out: string[] = [];
    while (out.length < n) {
      const w = Array.from({ length: len }, () => LETTERS[Math.floor(next() * LETTERS.length)]).join("");
      if (!seen.has(w)) (seen.add(w), out.push(w));
    }
    return out;
  };
  const labelled = (ws: string[]) => ws.map((w) => JSON.stringify({ prompt: `${w}=`, answer: [...w].reverse().join(""), difficulty: w.length })).join("\n") + "\n";
  const lengths = [2, 3, 4];
  return {
    anchor: labelled(lengths.flatMap((l) => words(l, 16))),
    validation: labelled(lengths.flatMap((l) => words(l, 4))),
    test: labelled(lengths.flatMap((l) => words(l, 4))),
    pool: [...lengths, 5].flatMap((l) => words(l, 12)).map((w) => JSON.stringify({ prompt: `${w}=`, difficulty: w.length })).join("\n") + "\n",
  };
}

/** Runs the CLI against the mesh whose state is in `stateDir`. */
const autodidact = (args: string[], stateDir: string) => runCli(args, { set: { AUTODIDACT_STATE_DIR: stateDir }, unset: ["AUTODIDACT_CONDUCTOR"] });

describe("a Hugging Face Llama-family checkpoint through the mesh", () => {
  let work: string;
  let stateDir: string;
  let packDir: string;
  let mesh: LocalMesh | undefined;
  let bus: Bus | undefined;
  const imported: CliResult[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "hf-mesh-work-"));
    stateDir = await mkdtemp(join(tmpdir(), "hf-mesh-"));
    const tasksDir = join(work, "tasks");
    packDir = join(tasksDir, TASK);
    await mkdir(packDir, { recursive: true });
    const tokenizerJson = llamaStyleTokenizer();
    for (const [split, text] of Object.entries(packRows())) await writeFile(join(packDir, `${split}.jsonl`), text);
    await writeFile(join(packDir, "tokenizer.json"), JSON.stringify(tokenizerJson));
    const splits = { anchor: "anchor.jsonl", validation: "validation.jsonl", test: "test.jsonl", pool: "pool.jsonl" };
    await writeFile(join(packDir, "pack.json"), JSON.stringify({ name: TASK, version: "0.1.0", splits, tokenizer: { file: "tokenizer.json" } }));
    const vocabSize = Object.keys((tokenizerJson.model as { vocab: object }).vocab).length;
    const tokenizerConfig = { tokenizer_class: "LlamaTokenizerFast", bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" };
    for (const [i, [lineage, name]] of Object.entries(MODELS).entries()) await saveTinyHfCheckpoint(join(work, `tiny-${lineage}`), { name, seed: 3 + i, vocabSize, tokenizerJson, tokenizerConfig });

    const task = ["--task-module-dir", tasksDir, "--task-module", packDir, "--task", TASK];
    const quiet = ["--log-level", "warn"];
    const members: MeshMember[] = [
      { name: "generator", kind: "generator", args: ["--lineage", GEN, "--batch-size", "4", ...task, ...quiet] },
      { name: "critic-model", kind: "critic", args: ["--kind", "model", "--critic-id", "model-crit", "--lineage", JUDGE, "--follow-promoted", "--ack-wait", "5s", ...task, ...quiet] },
      { name: "critic-accept", kind: "critic", args: ["--kind", "accept-all", "--critic-id", "accept", "--ack-wait", "5s", ...task, ...quiet] },
      { name: "consensus", kind: "consensus", args: quiet },
      { name: "trainer", kind: "trainer", args: ["--lineages", `${GEN},${JUDGE}`, "--steps", "4", "--batch-size", "4", "--max-reuse", "1000", "--train-threads", "1", "--data-dir", join(stateDir, "trainer"), ...task, ...quiet] },
      { name: "monitor", kind: "monitor", args: ["--eval-limit", "2", "--eval-min-difficulty", "2", "--eval-max-difficulty", "4", "--eval-samples", "2", "--dashboard-port", "-1", ...task, ...quiet] },
      { name: "conductor", kind: "conductor", args: ["--poll-interval", "100ms", "--progress-every", "200ms", "--retry-delay", "200ms", "--task-module-dir", tasksDir, "--task-module", packDir, ...quiet] },
    ];
    const starting = startLocalMesh({
      stateDir,
      members,
      // The model critic restarts until its lineage is imported: retry soon. Generous bounds for a loaded machine.
      restartPolicy: { initialDelayMs: 200, maxDelayMs: 2_000, stableAfterMs: 10_000 },
      readyTimeoutMs: 600_000,
      beforeServices: async (admin) => {
        const credentials = await resolveNatsCredentials({ natsNkeyFile: join(stateDir, "secrets", "admin.nk") });
        bus = await connectBus({ servers: `nats://${admin.nc.getServer()}`, name: "hf-mesh-test", ...(credentials ? { credentials } : {}) });
      },
    });
    starting.catch(() => undefined);
    // As a user does in a second terminal while `autodidact up` starts: the model critic follows the
    // promoted checkpoint of a lineage that has none yet, so it becomes ready only after the import.
    // The command is retried until the conductor and the monitor answer.
    const deadline = Date.now() + 500_000;
    for (const lineage of Object.keys(MODELS)) {
      let out: CliResult;
      do {
        out = await autodidact(["models", "import", join(work, `tiny-${lineage}`), "--lineage", lineage, "--task", TASK], stateDir);
        if (out.code === 0) break;
        await new Promise((r) => setTimeout(r, 1_000));
      } while (Date.now() < deadline);
      imported.push(out);
    }
    mesh = await starting;
  }, 720_000);

  afterAll(async () => {
    await bus?.close();
    await mesh?.stop();
    await rm(stateDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it("imports them with `models import`, runs one round on them, and each LoRA candidate keeps its family and names", async () => {
    for (const [i, lineage] of Object.keys(MODELS).entries()) {
      expect(imported[i]!.code, imported[i]!.out + imported[i]!.err).toBe(0);
      expect(imported[i]!.out).toContain(`imported tiny-${lineage} as ${lineage}@1, promoted by the monitor`);
    }

    const spec = create(RunSpecSchema, {
      name: "hf-round",
      task: TASK,
      taskModule: packDir,
      lineages: Object.keys(MODELS).map((l) => ({ name: l, baseModel: `tiny-${l}` })),
      curriculum: { kind: CurriculumPolicy_Kind.FIXED_STEP, start: 3, max: 4 },
      proposalsPerRound: 8,
      stop: { maxRounds: 1 },
      critics: [
        { id: "model-crit", kind: "model", lineage: JUDGE },
        { id: "accept", kind: "accept-all" },
      ],
      consensus: { kind: ConsensusKind.K_OF_N, critics: ["accept", "model-crit"], k: 1, timeoutMs: 10_000n, onTimeout: TimeoutOutcome.REJECT },
      training: { steps: 4n, batchSize: 4 },
      gate: { minAccuracyDelta: -1, maxDifficultyRegression: 1, maxCalibrationEce: 1, maxOverconfidentWrongRate: 1, maxDriftKl: 1e9, autoPromote: true },
      labels: { anchor: { min: 2, max: 3 }, validation: { min: 2, max: 3 }, test: { min: 2, max: 4 } },
      seed: 7n,
    });
    const file = join(work, "run.json");
    await writeFile(file, toJsonString(RunSpecSchema, spec));
    const created = await autodidact(["run", "create", "-f", file], stateDir);
    expect(created.code, created.err).toBe(0);
    const watched = await autodidact(["run", "watch", "hf-round"], stateDir);
    expect(watched.code, watched.out + watched.err).toBe(0);
    expect(watched.out).toMatch(/succeeded: ran 1 round/);
    expect(watched.out.match(/ done: difficulty /g)).toHaveLength(1);
    // The monitor gated each trained candidate and promoted it; generator and model critic swap to it.
    const got = await autodidact(["run", "get", "hf-round"], stateDir);
    expect(got.out).toMatch(new RegExp(`${GEN}:promoted@2`));
    expect(got.out).toMatch(new RegExp(`${JUDGE}:promoted@2`));
    expect(await servedVersion(GeneratorService, "generator", `${GEN}@2`)).toBe(`${GEN}@2`);
    expect(await servedVersion(CriticService, "critic-model", `${JUDGE}@2`)).toBe(`${JUDGE}@2`);

    // The generator proposed with the imported checkpoint, the model critic judged with it.
    const samples = (await readStream(bus!, Streams.Samples)).map((m) => fromBinary(SampleSchema, m.data)).filter((s) => !s.real && s.id.startsWith("hf-round-"));
    expect(samples).toHaveLength(8);
    for (const s of samples) {
      expect(s.generatorModelVersion).toBe(`${GEN}@1`);
      expect(s.prompt).toMatch(/^[a-h]{3}=$/);
      expect(s.tokenLogprobs.length).toBeGreaterThan(0);
      expect(s.tokenLogprobs.every(Number.isFinite)).toBe(true);
    }
    const ids = new Set(samples.map((s) => s.id));
    let judged: ReturnType<typeof fromBinary<typeof VerdictSchema>>[] = [];
    for (let i = 0; i < 100 && judged.length < ids.size; i++) {
      judged = (await readStream(bus!, Streams.Verdicts)).map((m) => fromBinary(VerdictSchema, m.data)).filter((v) => v.criticId === "model-crit" && ids.has(v.sampleId));
      if (judged.length < ids.size) await new Promise((r) => setTimeout(r, 200));
    }
    expect(judged).toHaveLength(ids.size);
    for (const v of judged) expect(v.criticModelVersion).toBe(`${JUDGE}@1`);

    // The round happened once: one journal start per lineage for round 1, one candidate of round 1 each.
    const starts = startsPerRoundLineage(await readJournal(join(stateDir, "trainer")));
    expect(Object.fromEntries(starts)).toEqual({ [`1/${GEN}`]: 1, [`1/${JUDGE}`]: 1 });
    const registry = createRegistry(bus!, { cacheDir: join(stateDir, "test-cache") });
    for (const lineage of Object.keys(MODELS)) {
      const records = await registry.listCheckpoints(lineage);
      expect(records.map((r) => [r.version, r.round])).toEqual([
        [1, 0],
        [2, 1],
      ]);
      await checkCandidate(registry, lineage, records[1]!.manifest);
    }
  }, 400_000);

  /** The model version a service reports serving, once it is `want` (or the last one seen after a while). */
  async function servedVersion(service: typeof GeneratorService | typeof CriticService, member: string, want: string): Promise<string | undefined> {
    const client = createClient(service, mesh!.address(member));
    try {
      let version: string | undefined;
      for (let i = 0; i < 150 && version !== want; i++) {
        version = (await client.getInfo({})).models[0]?.version;
        if (version !== want) await new Promise((r) => setTimeout(r, 200));
      }
      return version;
    } finally {
      client.close();
    }
  }

  /**
   * A trained candidate of an imported base: its manifest names the Hugging Face family and the PEFT
   * modules adapted; its folder is a Hugging Face folder of the same family (config.json and tokenizer
   * as imported, the same tensor names) that loads, its adapter PEFT's layout; base + adapter = candidate.
   */
  async function checkCandidate(registry: ReturnType<typeof createRegistry>, lineage: string, m: Record<string, unknown>): Promise<void> {
    const manifest = m as { adaptation?: string; model?: unknown; lora?: { targetModules?: string[]; modules?: string[] } };
    expect(manifest.adaptation).toBe("lora");
    expect(manifest.model).toEqual({ format: "huggingface", family: "llama", modelType: "llama" });
    expect(manifest.lora?.targetModules).toEqual(["q_proj", "v_proj"]);
    expect(manifest.lora?.modules).toEqual(["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]);

    const [baseDir, candDir] = [await registry.materialize(lineage, 1), await registry.materialize(lineage, 2)];
    const base = await importHfModel(baseDir);
    const tuned = await importHfModel(candDir);
    expect(tuned.family).toBe("llama");
    expect(tuned.hfConfig).toEqual(base.hfConfig);
    expect(JSON.parse(await readFile(join(candDir, "tokenizer.json"), "utf8"))).toEqual(llamaStyleTokenizer());
    expect(Object.keys(tuned.params).sort()).toEqual(Object.keys(base.params).sort());
    const adapter = await loadLoraAdapter(join(candDir, "adapter"), base.config);
    expect(adapter.config.target_modules).toEqual(["q_proj", "v_proj"]);
    expect(Object.keys(adapter.adapters).sort()).toEqual(manifest.lora!.modules!.flatMap((mod) => ["A", "B"].map((ab) => `base_model.model.${mod}.lora_${ab}.weight`)).sort());
    const merged = mergeLora(base.config, base.params, adapter.adapters, { rank: adapter.config.r, alpha: adapter.config.lora_alpha, targetModules: adapter.config.target_modules });
    let changed = 0;
    for (const [name, t] of Object.entries(tuned.params)) {
      const want = merged[name]!.data;
      const before = base.params[name]!.data;
      let worst = 0;
      t.data.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(Number(v) - Number(want[i])));
        if (v !== before[i]) changed++;
      });
      expect(worst, name).toBeLessThan(1e-5);
    }
    expect(changed).toBeGreaterThan(0);
    const loaded = await loadModel(candDir);
    expect(loaded.config.family).toBe("llama");
    expect(loaded.tokenizer.eosId).toBe(2);
  }
});
