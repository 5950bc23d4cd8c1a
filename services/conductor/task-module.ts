// The conductor's side of task modules: a run spec may name the module of its task, which must lie
// inside the conductor's configured task module directories. The conductor only resolves and digests
// the file (it never executes task code: it holds no verifier or held-out data); the services load the
// module from their own flags, and SERVE checks that they report the digest the run recorded.
import { create } from "@bufbuild/protobuf";
import { TaskIdentitySchema, type ServiceInfo, type TaskIdentity } from "../../src/gen/autodidact/v1/common_pb.js";
import { moduleDigest, resolveTaskModule, taskModuleLocations, type TaskModuleLocations } from "../../src/domain/task-modules/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";

/** Resolves run specs' task modules inside the configured directories only. */
export class TaskModuleGate {
  private constructor(private readonly locations: TaskModuleLocations) {}

  /** From the conductor's `--task-module-dir`s; its own `--task-module`s are resolved at once, so a bad one fails the start. */
  static async open(config: { readonly taskModule: readonly string[]; readonly taskModuleDir: readonly string[] }): Promise<TaskModuleGate> {
    const gate = new TaskModuleGate(await taskModuleLocations(config.taskModuleDir));
    for (const ref of config.taskModule) await gate.identify("", ref);
    return gate;
  }

  /**
   * The identity of a run's task module (undefined for a built-in task): PermissionDenied naming the file
   * when it lies outside the configured directories, NotFound when it does not exist.
   */
  async identify(task: string, ref: string): Promise<TaskIdentity | undefined> {
    if (ref === "") return undefined;
    const resolved = await resolveTaskModule(ref, this.locations);
    return create(TaskIdentitySchema, { name: task, module: ref, digest: await moduleDigest(resolved.file) });
  }
}

/**
 * FailedPrecondition when a service serving the run reports another module digest for the run's task
 * (it loaded other task code than the run recorded); nothing to check for built-in tasks.
 */
export function checkTaskIdentity(expected: TaskIdentity | undefined, info: ServiceInfo, who: string): void {
  if (expected === undefined || expected.digest === "") return;
  const got = info.taskIdentities.find((t) => t.name === expected.name);
  if (got === undefined) throw new AutodidactError(`${who} has not loaded task ${expected.name} (start it with --task-module ${expected.module})`, Code.FailedPrecondition);
  if (got.digest !== expected.digest) {
    throw new AutodidactError(`${who} runs task ${expected.name} from module digest ${got.digest.slice(0, 12)}, the run recorded ${expected.digest.slice(0, 12)} (${expected.module})`, Code.FailedPrecondition);
  }
}
