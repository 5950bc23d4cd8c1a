// Importing a base model: a folder of the conductor's models directory becomes the first checkpoint
// of a lineage (registered like the trainer registers candidates), and the monitor evaluates and
// promotes it — the monitor stays the only service that moves the promoted pointer.
import { realpath, stat } from "node:fs/promises";
import { join, relative, isAbsolute, sep } from "node:path";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { Logger } from "../../src/platform/telemetry/index.js";
import type { CheckpointRef } from "../../src/gen/autodidact/v1/checkpoint_pb.js";
import { checkpointRefOf, listCheckpointFiles, type CheckpointRecord, type Registry } from "../../src/domain/registry/index.js";
import type { Peers } from "./peers.js";
import { checkRelativeModelPath } from "./run-spec.js";

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** What an import did. */
export interface ImportOutcome {
  readonly checkpoint: CheckpointRef;
  /** False when the lineage already had a promoted checkpoint (nothing was imported). */
  readonly imported: boolean;
}

/** Imports base models from one directory (never from a path a caller chooses outside it). */
export class BaseImporter {
  readonly #registry: Registry;
  readonly #peers: Peers;
  readonly #modelsDir: string | undefined;
  readonly #logger: Logger;

  constructor(registry: Registry, peers: Peers, modelsDir: string | undefined, logger: Logger) {
    this.#registry = registry;
    this.#peers = peers;
    this.#modelsDir = modelsDir;
    this.#logger = logger;
  }

  /**
   * Registers `model` (a folder relative to the models directory) as the next version of `lineage`
   * and has the monitor promote it, unless the lineage has a promoted checkpoint already. Idempotent:
   * a repeat after a crash reuses the allocated version and the registered record.
   */
  async importBase(lineage: string, model: string, task: string): Promise<ImportOutcome> {
    if (!TOKEN.test(lineage)) throw new AutodidactError(`invalid lineage ${JSON.stringify(lineage)}`, Code.InvalidArgument);
    if (!TOKEN.test(task)) throw new AutodidactError(`invalid task ${JSON.stringify(task)}`, Code.InvalidArgument);
    const promoted = await this.#registry.getPromoted(lineage);
    if (promoted !== undefined) {
      const record = await this.#registry.getCheckpoint(lineage, promoted.version);
      if (record === undefined) throw new AutodidactError(`${lineage}@${promoted.version} is promoted but not in the registry`, Code.DataLoss);
      return { checkpoint: checkpointRefOf(record), imported: false };
    }
    const dir = await this.#folder(model);
    const files = await listCheckpointFiles(dir);
    if (files.length === 0) throw new AutodidactError(`model folder ${model} is empty`, Code.FailedPrecondition);
    // The owner makes a repeat after a crash get the same version back.
    const version = await this.#registry.allocateVersion(lineage, `conductor:import:${lineage}`);
    let record = await this.#registry.getCheckpoint(lineage, version);
    if (record === undefined) {
      record = {
        lineage,
        version,
        parentVersion: 0,
        round: 0,
        status: "candidate",
        statusReason: `base model ${model}, imported by the conductor`,
        files,
        manifest: { task, base: true, source: model },
        metrics: {},
        createdAt: new Date().toISOString(),
      } satisfies CheckpointRecord;
      try {
        await this.#registry.putCheckpoint(record, dir);
      } catch (err) {
        if (!(err instanceof AutodidactError && err.code === Code.AlreadyExists)) throw err;
        record = (await this.#registry.getCheckpoint(lineage, version))!;
      }
    }
    if (JSON.stringify(record.files) !== JSON.stringify(files)) {
      throw new AutodidactError(`${lineage}@${version} is registered with other files than ${model}`, Code.FailedPrecondition);
    }
    const out = await this.#peers.monitor().promote({ lineage, version: BigInt(version), force: true, reason: `base model ${model} imported by the conductor` });
    this.#logger.info("imported a base model", { lineage, version, model });
    if (!out.promoted || out.checkpoint === undefined) throw new AutodidactError(`the monitor did not promote ${lineage}@${version}`, Code.Internal);
    return { checkpoint: out.checkpoint, imported: true };
  }

  /** The model folder inside the models directory (symlinks resolved: it cannot point outside). */
  async #folder(model: string): Promise<string> {
    if (this.#modelsDir === undefined) throw new AutodidactError("this conductor has no --models-dir: it imports no models", Code.FailedPrecondition);
    const rel = checkRelativeModelPath("model", model);
    let root: string;
    let dir: string;
    try {
      root = await realpath(this.#modelsDir);
      dir = await realpath(join(root, rel));
    } catch (cause) {
      throw new AutodidactError(`no model folder ${model} in the models directory`, Code.NotFound, { cause });
    }
    const inside = relative(root, dir);
    if (inside === "" || inside.startsWith("..") || isAbsolute(inside) || inside.split(sep).includes("..")) {
      throw new AutodidactError(`model ${model} resolves outside the models directory`, Code.InvalidArgument);
    }
    if (!(await stat(dir)).isDirectory()) throw new AutodidactError(`model ${model} is not a folder`, Code.InvalidArgument);
    return dir;
  }
}
