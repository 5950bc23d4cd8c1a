// `autodidact models import DIR --lineage L [--task T]`: a base model becomes the first checkpoint of a
// lineage. The conductor imports only from its own models directory, so the folder is copied there
// first (the local mesh's conductor runs on this machine); `--in-place` names a folder already in it
// (a conductor elsewhere, e.g. a volume on Kubernetes).
import { cp, mkdir, readFile, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { ConductorService } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { clientSecurityFromOptions } from "../../src/platform/auth/index.js";
import { defineOptions } from "../../src/platform/config/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { createClient } from "../../src/platform/rpc/index.js";
import { listCheckpointFiles } from "../../src/domain/registry/index.js";
import { importHfModel, isHfConfig } from "../../src/engine/index.js";
import { conductorAddress, conductorClientOptions } from "./run-commands.js";

const options = defineOptions({
  ...conductorClientOptions,
  lineage: { type: "string", help: "lineage whose first checkpoint the model becomes", required: true },
  task: { type: "string", help: "task pack the model is for", default: "addition" },
  name: { type: "string", help: "folder name inside the conductor's models directory (default: the folder's own name)" },
  inPlace: { type: "bool", help: "DIR is already a folder of the conductor's models directory (relative to it): copy nothing" },
});

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** Copies `dir` to `<modelsDir>/<name>` unless the same files are there already; refuses other files under that name. */
async function copyIntoModels(dir: string, modelsDir: string, name: string): Promise<void> {
  if (!(await exists(modelsDir))) {
    throw new AutodidactError(`the conductor's models directory ${modelsDir} is not on this machine: copy ${dir} into it and run with --in-place`, Code.FailedPrecondition);
  }
  const target = join(modelsDir, name);
  if (await exists(target)) {
    const [a, b] = await Promise.all([listCheckpointFiles(dir), listCheckpointFiles(target)]);
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new AutodidactError(`${target} exists with other files: choose another --name`, Code.AlreadyExists);
    return;
  }
  await mkdir(modelsDir, { recursive: true });
  await cp(dir, target, { recursive: true, errorOnExist: true, force: false });
}

/**
 * Reads a Hugging Face checkpoint folder (GPT-2 / Llama family) before anything is copied, so an
 * unsupported option (rope scaling, sliding window, MoE…) or a corrupt file fails here with the
 * field or file named, not later inside the services. Other folders are the services' to check.
 */
async function checkImportable(dir: string): Promise<void> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  } catch {
    return;
  }
  if (!isHfConfig(json) || json.autodidact !== undefined) return;
  const m = await importHfModel(dir);
  if (!m.tokenizer) throw new AutodidactError(`${dir}: a Hugging Face checkpoint needs its tokenizer.json to be served and trained`, Code.FailedPrecondition);
}

/** `autodidact models import …`; writes to `out`, returns the exit code. */
export async function modelsCommand(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [sub, ...rest] = argv;
  const usage = "autodidact models import <DIR> --lineage <lineage> [--task <task>] [--name <name>] [--in-place]";
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    out(options.help({ usage, description: "Import a base model: the first checkpoint of a lineage, evaluated and promoted by the monitor." }) + "\n");
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "import") throw new AutodidactError(`unknown models command "${sub}": ${usage}`, Code.InvalidArgument);
  const parsed = options.parse(rest, process.env);
  if (parsed.help) {
    out(options.help({ usage }) + "\n");
    return 0;
  }
  const v = parsed.values;
  const dir = parsed.positionals[0];
  if (dir === undefined) throw new AutodidactError(`usage: ${usage}`, Code.InvalidArgument);
  if (!v.inPlace) await checkImportable(resolve(dir));
  const client = createClient(ConductorService, await conductorAddress(v.conductor, v.stateDir), { deadlineMs: 30 * 60_000, ...clientSecurityFromOptions(v, process.env) });
  try {
    let model = dir;
    if (!v.inPlace) {
      const modelsDir = (await client.getInfo({})).attributes["modelsDir"];
      if (modelsDir === undefined) throw new AutodidactError("the conductor has no models directory (--models-dir): it imports no models", Code.FailedPrecondition);
      model = v.name ?? basename(resolve(dir));
      await copyIntoModels(resolve(dir), resolve(modelsDir), model);
    }
    const res = await client.importModel({ lineage: v.lineage, model, task: v.task });
    const ref = res.checkpoint;
    out(res.imported ? `imported ${model} as ${v.lineage}@${ref?.version}, promoted by the monitor\n` : `${v.lineage} has a promoted checkpoint already (v${ref?.version}): nothing imported\n`);
    return 0;
  } finally {
    client.close();
  }
}
