import { dirname } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { defineDatasetPack, loadDatasetPack, readDatasetFile } from "./dataset/index.js";
import { createRng } from "./rng.js";
import { importTaskModule, moduleError, taskModuleLocations, type TaskIdentity } from "../task-modules/index.js";
import { getTaskPack, recordTaskIdentity, registerTaskPack, taskIdentity } from "./registry.js";
import { defineTaskPack, type TaskPack, type TaskPackDefinition } from "./task-pack.js";

/**
 * What a task module's default export function receives: the pack builders, so a module outside this
 * repository needs no import of it at run time (`import type` for the types is erased by the loader).
 */
export interface TaskModuleApi {
  readonly defineTaskPack: typeof defineTaskPack;
  readonly defineDatasetPack: typeof defineDatasetPack;
  readonly loadDatasetPack: typeof loadDatasetPack;
  readonly readDatasetFile: typeof readDatasetFile;
  readonly createRng: typeof createRng;
}

/** The one {@link TaskModuleApi} handed to every module. */
export const TASK_MODULE_API: TaskModuleApi = Object.freeze({ defineTaskPack, defineDatasetPack, loadDatasetPack, readDatasetFile, createRng });

const PACK_FUNCTIONS = [
  "createPromptSampler",
  "createAnchorSource",
  "normalize",
  "equivalent",
  "checkFormat",
  "lengthFilter",
  "rareSlices",
  "difficultyOf",
  "maxPromptLength",
  "maxAnswerLength",
  "trainingText",
  "promptId",
] as const;
const DEFINITION_FUNCTIONS = ["problemSpace", "sample", "solve", "checkFormat", "rareSlices", "difficultyOf", "maxPromptLength", "maxAnswerLength"] as const;

/**
 * A module's export as a pack: a full {@link TaskPack} (e.g. from `defineDatasetPack`) is taken as is,
 * a {@link TaskPackDefinition} (sample + solve) goes through `defineTaskPack`. Anything else is
 * InvalidArgument saying what is missing.
 */
export function packFromExport(value: unknown): TaskPack {
  if (value === null || typeof value !== "object") throw new AutodidactError(`exports ${value === null ? "null" : typeof value}, not a task pack`, Code.InvalidArgument);
  const v = value as Record<string, unknown>;
  if (typeof v.name !== "string" || v.name === "") throw new AutodidactError("the exported pack has no name", Code.InvalidArgument);
  if (typeof v.tokenizer !== "object" || v.tokenizer === null) throw new AutodidactError(`pack ${v.name} has no tokenizer`, Code.InvalidArgument);
  const isPack = typeof v.createPromptSampler === "function";
  const needed: readonly string[] = isPack ? PACK_FUNCTIONS : DEFINITION_FUNCTIONS;
  const missing = needed.filter((f) => typeof v[f] !== "function");
  if (missing.length > 0) {
    throw new AutodidactError(`pack ${v.name} is neither a task pack nor a pack definition: missing function(s) ${missing.join(", ")}`, Code.InvalidArgument);
  }
  return isPack ? (value as TaskPack) : defineTaskPack(value as TaskPackDefinition);
}

/**
 * Loads the task modules a service was configured with (`--task-module`, from `--task-module-dir` /
 * `AUTODIDACT_TASK_MODULE_PATH` only), registers their packs and records their identities. Every service
 * calls this at start, so a module loads the same way everywhere; a refused or broken module fails the
 * start with an error naming the file. Returns the identities, in the order given.
 */
export async function loadTaskModules(options: { readonly modules: readonly string[]; readonly dirs: readonly string[]; readonly cwd?: string }): Promise<TaskIdentity[]> {
  if (options.modules.length === 0) return [];
  const locations = await taskModuleLocations(options.dirs, options.cwd);
  const out: TaskIdentity[] = [];
  for (const ref of options.modules) {
    const loaded = await importTaskModule(ref, locations, { ...(options.cwd !== undefined ? { cwd: options.cwd } : {}), api: TASK_MODULE_API });
    let pack: TaskPack;
    try {
      pack = loaded.kind === "manifest" ? await loadDatasetPack(dirname(loaded.resolved.file)) : packFromExport(loaded.value);
    } catch (err) {
      throw moduleError(loaded.resolved.file, err);
    }
    const identity: TaskIdentity = {
      name: pack.name,
      version: pack.version ?? "0.0.0",
      module: ref,
      digest: loaded.digest,
      dataDigest: pack.dataDigest ?? "",
    };
    const known = knownIdentity(pack.name);
    if (known !== undefined && known.digest === identity.digest && known.dataDigest === identity.dataDigest) {
      out.push(known);
      continue;
    }
    try {
      registerTaskPack(pack);
    } catch (err) {
      throw moduleError(loaded.resolved.file, err);
    }
    recordTaskIdentity(identity);
    out.push(identity);
  }
  return out;
}

function knownIdentity(name: string): TaskIdentity | undefined {
  try {
    getTaskPack(name);
  } catch {
    return undefined;
  }
  const id = taskIdentity(name);
  return id.module === "" ? undefined : id;
}

/** What {@link startTaskModules} needs: the two service flags and a logger. */
export interface TaskModuleConfig {
  readonly taskModule: readonly string[];
  readonly taskModuleDir: readonly string[];
}

/**
 * The one call every service makes at start: loads its `--task-module`s and logs each identity with
 * the load time, so the cost a module adds to a start is visible in the service's own log.
 */
export async function startTaskModules(config: TaskModuleConfig, logger: { info(message: string, fields?: Record<string, unknown>): void }): Promise<TaskIdentity[]> {
  const started = performance.now();
  const identities = await loadTaskModules({ modules: config.taskModule, dirs: config.taskModuleDir });
  for (const id of identities) {
    logger.info("task module loaded", { task: id.name, version: id.version, module: id.module, digest: id.digest, dataDigest: id.dataDigest, ms: Math.round(performance.now() - started) });
  }
  return identities;
}
