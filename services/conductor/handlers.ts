// The ConductorService RPCs over the run store, the scheduler and the base importer.
import type { TaskModuleGate } from "./task-module.js";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import type { ServiceHandlers } from "../../src/platform/rpc/index.js";
import { ConductorService, RunSpecSchema, RunStatus, type Run, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import type { ServiceInfo } from "../../src/gen/autodidact/v1/common_pb.js";
import type { BaseImporter } from "./base-import.js";
import type { Peers } from "./peers.js";
import { cancelChange, isActive, newRun, pauseChange, resumeChange } from "./run-control.js";
import type { RunEventLog } from "./run-events.js";
import { normalizeRunSpec, sameRunSpec } from "./run-spec.js";
import { statusSnapshot, type RunStore } from "./run-store.js";
import type { RunScheduler } from "./scheduler.js";

/** What the RPCs work with. */
export interface HandlerDeps {
  readonly store: RunStore;
  readonly events: RunEventLog;
  readonly scheduler: RunScheduler;
  readonly importer: BaseImporter;
  readonly peers: Peers;
  readonly info: () => ServiceInfo;
  /** Resolves a run spec's task module inside the configured directories (none: specs may not name one). */
  readonly taskModules?: TaskModuleGate;
}

const ENDED = new Set([RunStatus.SUCCEEDED, RunStatus.CANCELLED, RunStatus.FAILED]);
const createdMs = (r: Run): number => (r.createdAt === undefined ? 0 : timestampMs(r.createdAt));

/**
 * Creates the run of a spec unless a run of that name exists: the existing run when the spec is the
 * same, ALREADY_EXISTS when it differs. Refused while another run of the task is active (one loop per
 * task: rounds, intake and the consensus policy are the task's).
 */
export async function createRun(deps: Pick<HandlerDeps, "store" | "peers" | "scheduler" | "taskModules">, input: RunSpec): Promise<Run> {
  const spec = normalizeRunSpec(input);
  const existing = await deps.store.get(spec.name);
  if (existing?.stored.run !== undefined) {
    if (sameRunSpec(existing.stored.run.spec ?? create(RunSpecSchema), spec)) return existing.stored.run;
    throw new AutodidactError(`run ${spec.name} exists with another spec: choose another name`, Code.AlreadyExists);
  }
  const missing = deps.peers.missing(
    spec.lineages.map((l) => l.name),
    spec.critics.filter((c) => c.kind === "model").map((c) => c.id),
  );
  if (missing.length > 0) throw new AutodidactError(`this conductor cannot drive run ${spec.name}: it lacks ${missing.join(", ")}`, Code.FailedPrecondition);
  const busy = (await deps.store.list()).find((r) => r.id !== spec.name && r.spec?.task === spec.task && isActive(r));
  if (busy !== undefined) throw new AutodidactError(`run ${busy.id} of task ${spec.task} is ${RunStatus[busy.status]}: cancel it first (one run per task)`, Code.FailedPrecondition);
  const run = newRun(spec);
  const identity = await deps.taskModules?.identify(spec.task, spec.taskModule);
  if (identity !== undefined) run.taskIdentity = identity;
  else if (spec.taskModule !== "") throw new AutodidactError(`run ${spec.name} names task module ${spec.taskModule}, but this conductor has no task module directory configured`, Code.PermissionDenied);
  try {
    await deps.store.create(run, [statusSnapshot(run)]);
  } catch (err) {
    // Created by another call meanwhile: the same rule as above.
    if (err instanceof AutodidactError && err.code === Code.AlreadyExists) return createRun(deps, input);
    throw err;
  }
  deps.scheduler.kick();
  return deps.store.getRun(spec.name);
}

/** The ConductorService handlers. */
export function conductorHandlers(deps: HandlerDeps): ServiceHandlers<typeof ConductorService> {
  const { store } = deps;
  return {
    getInfo: () => deps.info(),
    async createRun(req) {
      if (req.spec === undefined) throw new AutodidactError("CreateRun needs a spec", Code.InvalidArgument);
      return createRun(deps, req.spec);
    },
    getRun: (req) => store.getRun(req.id),
    async listRuns() {
      return { runs: (await store.list()).sort((a, b) => createdMs(b) - createdMs(a)) };
    },
    async *watchRun(req, call) {
      await store.getRun(req.id); // NOT_FOUND before anything streams
      const over = async (last: bigint): Promise<boolean> => {
        const run = await store.getRun(req.id);
        return ENDED.has(run.status) && last >= run.lastEventSeq;
      };
      yield* deps.events.watch(req.id, req.fromSeq, over, call.signal);
    },
    pauseRun: (req) => store.update(req.id, pauseChange),
    async resumeRun(req) {
      const run = await store.getRun(req.id);
      if (run.status === RunStatus.PAUSED || run.status === RunStatus.FAILED) {
        const busy = (await store.list()).find((r) => r.id !== run.id && r.spec?.task === run.spec?.task && (r.status === RunStatus.RUNNING || r.status === RunStatus.PENDING));
        if (busy !== undefined) throw new AutodidactError(`run ${busy.id} of task ${run.spec?.task} is ${RunStatus[busy.status]}: one run per task`, Code.FailedPrecondition);
      }
      const out = await store.update(req.id, resumeChange);
      deps.scheduler.kick();
      return out;
    },
    cancelRun: (req) => store.update(req.id, cancelChange),
    async importModel(req) {
      if (req.lineage === "" || req.model === "" || req.task === "") throw new AutodidactError("ImportModel needs a lineage, a model folder and a task", Code.InvalidArgument);
      return deps.importer.importBase(req.lineage, req.model, req.task);
    },
  };
}
