import { pathToFileURL } from "node:url";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { basename } from "node:path";
import { DATASET_MANIFEST, moduleDigest, resolveTaskModule, type ResolvedTaskModule, type TaskModuleLocations } from "./locations.js";

/**
 * Which task code and data a sample, checkpoint or report came from: the pack's name and version, the
 * module reference and sha256 of its entry file (empty for built-in packs, which the software version
 * identifies), and the data digest of a data-set pack (empty otherwise).
 */
export interface TaskIdentity {
  readonly name: string;
  readonly version: string;
  /** The reference the module was named by (path or package), "" for a built-in pack. */
  readonly module: string;
  /** sha256 hex of the module's entry file, or `builtin`. */
  readonly digest: string;
  /** sha256 hex over a data-set pack's rows, "" for packs without data files. */
  readonly dataDigest: string;
}

/** A module's export before it is known to be a pack: the loaded value, its file and digest. */
export interface LoadedModule {
  readonly resolved: ResolvedTaskModule;
  readonly digest: string;
  /** `code`: an ES module; `manifest`: a data-set pack's `pack.json` (nothing executed; `value` undefined). */
  readonly kind: "code" | "manifest";
  /** The pack the module exports (default export or `taskPack`), awaited, and called with the API if it is a function. */
  readonly value: unknown;
}

/** Wraps any failure while loading a module into an error that names the file (keeping its status code). */
export function moduleError(file: string, err: unknown): AutodidactError {
  const inner = AutodidactError.from(err, Code.FailedPrecondition);
  const text = inner.rawMessage.includes(file) ? inner.rawMessage : `task module ${file}: ${inner.rawMessage}`;
  return new AutodidactError(text, inner.code, { cause: err, details: { file } });
}

/**
 * Resolves (inside the configured locations only), digests and imports a task module, then takes its
 * pack: `export default` (or `export const taskPack`) of a pack, a promise of one, or a function of
 * `options.api` returning either (so a module needs no import of this repository at run time).
 * TypeScript modules load through the tsx loader the services run under. A `pack.json` (or a folder
 * holding one) is a data-set pack: digested, not imported.
 */
export async function importTaskModule(ref: string, locations: TaskModuleLocations, options: { readonly cwd?: string; readonly api?: unknown } = {}): Promise<LoadedModule> {
  const resolved = await resolveTaskModule(ref, locations, options.cwd);
  try {
    const digest = await moduleDigest(resolved.file);
    if (basename(resolved.file) === DATASET_MANIFEST) return { resolved, digest, kind: "manifest", value: undefined };
    const ns = (await import(pathToFileURL(resolved.file).href)) as Record<string, unknown>;
    let value = ns.default ?? ns.taskPack;
    if (value === undefined) throw new AutodidactError("exports no pack (use `export default` or `export const taskPack`)", Code.InvalidArgument);
    if (typeof value === "function") value = (value as (api: unknown) => unknown)(options.api);
    value = await value;
    return { resolved, digest, kind: "code", value };
  } catch (err) {
    throw moduleError(resolved.file, err);
  }
}
