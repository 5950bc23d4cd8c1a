import { AutodidactError, Code } from "../../platform/errors/index.js";

/** Where a model comes from: a local folder/file, or a checkpoint of the registry. */
export type ModelSource = { readonly kind: "path"; readonly path: string } | { readonly kind: "checkpoint"; readonly lineage: string; readonly version: number };

/**
 * The part of the checkpoint registry a model holder needs (`src/domain/registry`'s Registry satisfies it),
 * so serving depends on fetching checkpoints, not on the registry's whole surface.
 */
export interface CheckpointFetcher {
  materialize(lineage: string, version: number): Promise<string>;
}

const REF = /^([A-Za-z0-9_-]+)@([1-9][0-9]*)$/;

/** Parses a `--model` value: `<lineage>@<version>` is a checkpoint, anything else a path. */
export function parseModelRef(ref: string): ModelSource {
  const m = REF.exec(ref);
  if (m !== null) return { kind: "checkpoint", lineage: m[1] as string, version: Number(m[2]) };
  if (ref.trim() === "") throw new AutodidactError("empty model reference", Code.InvalidArgument);
  return { kind: "path", path: ref };
}

/**
 * How GetInfo describes a served model version: a checkpoint (`<lineage>@<version>`) names its
 * lineage and number; anything else is a `sha256:<digest>` of the weights loaded from a path.
 */
export function servedModel(role: string, version: string): { role: string; version: string; lineage?: string; checkpointVersion?: bigint; digest?: string } {
  const m = REF.exec(version);
  if (m !== null) return { role, version, lineage: m[1] as string, checkpointVersion: BigInt(m[2] as string) };
  return { role, version, digest: version.replace(/^sha256:/, "") };
}

/** The wire version of a checkpoint: `<lineage>@<version>`. */
export function checkpointVersion(lineage: string, version: number): string {
  return `${lineage}@${version}`;
}

/**
 * Turns a source into a local path plus the version string results must carry (undefined for a path:
 * the loader names it by digest). Checkpoints are downloaded and verified by the registry.
 */
export async function resolveModelSource(source: ModelSource, fetcher: CheckpointFetcher | undefined): Promise<{ path: string; version: string | undefined }> {
  if (source.kind === "path") return { path: source.path, version: undefined };
  if (fetcher === undefined) {
    throw new AutodidactError(`cannot load checkpoint ${checkpointVersion(source.lineage, source.version)}: no checkpoint registry configured`, Code.FailedPrecondition);
  }
  if (!Number.isInteger(source.version) || source.version < 1) {
    throw new AutodidactError(`checkpoint version must be a positive integer, got ${source.version}`, Code.InvalidArgument);
  }
  const path = await fetcher.materialize(source.lineage, source.version);
  return { path, version: checkpointVersion(source.lineage, source.version) };
}
