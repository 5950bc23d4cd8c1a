import { AutodidactError, Code } from "../../platform/errors/index.js";
import { softwareVersion } from "../../platform/rpc/service-info.js";
import type { TaskIdentity } from "../task-modules/index.js";
import { createAdditionTask } from "./addition.js";
import { createG2pTask, G2P } from "./g2p.js";
import { createPaddedAdditionTask, PADDED_ADDITION } from "./padded-addition.js";
import { createReverseTask } from "./reverse.js";
import type { TaskPack } from "./task-pack.js";

const packs = new Map<string, TaskPack>();
const identities = new Map<string, TaskIdentity>();
const builtins: ReadonlyArray<[string, () => TaskPack]> = [
  ["addition", createAdditionTask],
  ["reverse", createReverseTask],
  [PADDED_ADDITION, createPaddedAdditionTask],
  [G2P, () => createG2pTask()],
];

/** Names of every known task (built-ins plus registered ones), sorted. */
export function listTaskPacks(): string[] {
  return [...new Set([...builtins.map(([n]) => n), ...packs.keys()])].sort();
}

/**
 * Looks a task pack up by name, so services take a task name from config and stay task-agnostic.
 * Throws InvalidArgument naming the known tasks when the name is unknown.
 */
export function getTaskPack(name: string): TaskPack {
  const found = packs.get(name);
  if (found !== undefined) return found;
  const builtin = builtins.find(([n]) => n === name);
  if (builtin !== undefined) {
    const pack = builtin[1]();
    packs.set(name, pack);
    return pack;
  }
  throw new AutodidactError(`unknown task ${JSON.stringify(name)}, known: ${listTaskPacks().join(", ")}`, Code.InvalidArgument, {
    details: { task: name },
  });
}

/** Adds a deployment's own task pack; AlreadyExists when the name is taken. */
export function registerTaskPack(pack: TaskPack): void {
  if (packs.has(pack.name) || builtins.some(([n]) => n === pack.name)) {
    throw new AutodidactError(`task ${JSON.stringify(pack.name)} is already registered`, Code.AlreadyExists);
  }
  packs.set(pack.name, pack);
}

/** Records where a registered pack came from (its module and digest); see {@link taskIdentity}. */
export function recordTaskIdentity(identity: TaskIdentity): void {
  identities.set(identity.name, identity);
}

/**
 * The identity of a known task, recorded in every sample, checkpoint manifest and report: a task
 * module's (name, version, module, digest, data digest), or for a built-in pack the software version
 * and digest `builtin`. Throws like {@link getTaskPack} for an unknown name.
 */
export function taskIdentity(name: string): TaskIdentity {
  const pack = getTaskPack(name);
  return identities.get(name) ?? { name, version: pack.version ?? softwareVersion(), module: "", digest: "builtin", dataDigest: pack.dataDigest ?? "" };
}

/** Identities of the named tasks that are known (unknown names are left out): what GetInfo reports. */
export function taskIdentities(names: readonly string[]): TaskIdentity[] {
  return names.flatMap((n) => {
    try {
      return [taskIdentity(n)];
    } catch {
      return [];
    }
  });
}
