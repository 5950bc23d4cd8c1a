import { createHash } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { delimiter, isAbsolute, join, relative, resolve } from "node:path";
import { AutodidactError, Code } from "../../platform/errors/index.js";

/**
 * Where task modules may be loaded from: the directories the operator configured (`--task-module-dir`,
 * `AUTODIDACT_TASK_MODULE_PATH`; a ConfigMap or volume on Kubernetes), real paths (symlinks resolved).
 * Loading a module is executing code, so nothing outside them ever loads, and no RPC caller names a path.
 */
export interface TaskModuleLocations {
  readonly dirs: readonly string[];
}

/**
 * The configured directories: flag values, each possibly a `PATH`-style list (`:`-separated on Unix),
 * resolved against `cwd` and to their real paths. A directory that does not exist is an error naming it.
 */
export async function taskModuleLocations(dirs: readonly string[], cwd: string = process.cwd()): Promise<TaskModuleLocations> {
  const out: string[] = [];
  for (const entry of dirs.flatMap((d) => d.split(delimiter)).filter((d) => d.trim() !== "")) {
    const full = resolve(cwd, entry);
    let real: string;
    try {
      real = await realpath(full);
      if (!(await stat(real)).isDirectory()) throw new Error("not a directory");
    } catch (cause) {
      throw new AutodidactError(`task module directory ${full} is not a readable directory: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
    }
    if (!out.includes(real)) out.push(real);
  }
  return { dirs: out };
}

/** Whether `file` (a real path) lies inside `dir` (a real path). */
function within(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** Whether a module reference is a file path (vs an npm package name). */
export function isPathReference(ref: string): boolean {
  return ref.startsWith(".") || ref.startsWith("/") || isAbsolute(ref) || /\.(m?[jt]s|cjs|cts|mts|json)$/.test(ref);
}

/** A data-set pack folder's manifest: a module reference may name it (or its folder) instead of code. */
export const DATASET_MANIFEST = "pack.json";

/** A resolved task module: the reference as given, and the real path of its entry file. */
export interface ResolvedTaskModule {
  readonly reference: string;
  readonly file: string;
}

/**
 * Resolves a module reference to a file inside the configured locations. A path is taken relative to
 * `cwd` when it exists there, else to each location in turn; a package name is resolved from each
 * location's `node_modules`, then as a path relative to `cwd`. PermissionDenied naming the file when it lies outside every location;
 * NotFound when nothing matches.
 */
export async function resolveTaskModule(ref: string, locations: TaskModuleLocations, cwd: string = process.cwd()): Promise<ResolvedTaskModule> {
  if (ref.trim() === "") throw new AutodidactError("task module reference is empty", Code.InvalidArgument);
  const candidates: string[] = [];
  if (isPathReference(ref)) {
    candidates.push(resolve(cwd, ref));
    if (!isAbsolute(ref)) for (const dir of locations.dirs) candidates.push(resolve(dir, ref));
  } else {
    for (const dir of locations.dirs) {
      try {
        candidates.push(createRequire(join(dir, "noop.js")).resolve(ref));
      } catch {
        // not installed under this location
      }
    }
    // A bare name may also be a folder or file next to the caller (`my-task` for ./my-task).
    candidates.push(resolve(cwd, ref));
  }
  for (const candidate of candidates) {
    let real: string;
    try {
      real = await realpath(candidate);
      // A folder stands for its data-set manifest.
      if ((await stat(real)).isDirectory()) real = await realpath(join(real, DATASET_MANIFEST));
      if (!(await stat(real)).isFile()) continue;
    } catch {
      continue;
    }
    if (!locations.dirs.some((dir) => within(dir, real))) {
      const where = locations.dirs.length === 0 ? "no task module directory is configured (--task-module-dir / AUTODIDACT_TASK_MODULE_PATH)" : `allowed: ${locations.dirs.join(", ")}`;
      throw new AutodidactError(`task module ${real} is outside the configured task module directories (${where})`, Code.PermissionDenied, {
        details: { file: real },
      });
    }
    return { reference: ref, file: real };
  }
  throw new AutodidactError(`task module ${JSON.stringify(ref)} not found (looked in ${[...new Set(candidates)].join(", ") || "nothing: no location configured"})`, Code.NotFound, {
    details: { file: ref },
  });
}

/** sha256 hex of a module's entry file: the "module digest" every sample, checkpoint and report records. */
export async function moduleDigest(file: string): Promise<string> {
  return createHash("sha256").update(await readFile(file)).digest("hex");
}
