// Pause, resume and cancel as changes of a run record (the RPCs apply them with compare-and-set).
// A run that a conductor is driving changes at its next transition (`requested_status`), so nothing
// in flight is cut; a run nobody drives changes at once.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { RoundPhase, RunSchema, RunStatus, type Run, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";
import { statusSnapshot, type EventInit } from "./run-store.js";

const name = (s: RunStatus): string => RunStatus[s];
const refuse = (r: Run, what: string): never => {
  throw new AutodidactError(`run ${r.id} is ${name(r.status)}: it cannot be ${what}`, Code.FailedPrecondition);
};

/** A new run of a (normalized) spec, waiting for a conductor to pick it up. */
export function newRun(spec: RunSpec, now = new Date()): Run {
  return create(RunSchema, { id: spec.name, spec, status: RunStatus.PENDING, phase: RoundPhase.IMPORT, createdAt: timestampFromDate(now), updatedAt: timestampFromDate(now), message: "waiting for a conductor" });
}

/** Whether a run is still under way (or may be resumed). */
export function isActive(r: Run): boolean {
  return r.status === RunStatus.PENDING || r.status === RunStatus.RUNNING || r.status === RunStatus.PAUSED || r.status === RunStatus.FAILED;
}

/** PauseRun: after the current phase when a phase may be running; at once when the run was never picked up. */
export function pauseChange(r: Run): EventInit[] | undefined {
  if (r.status === RunStatus.PAUSED || r.status === RunStatus.FAILED || r.requestedStatus === RunStatus.PAUSED) return undefined;
  if (r.status === RunStatus.PENDING) {
    r.status = RunStatus.PAUSED;
    r.message = "paused before it started";
    return [statusSnapshot(r)];
  }
  if (r.status !== RunStatus.RUNNING || r.requestedStatus === RunStatus.CANCELLED) return refuse(r, "paused");
  r.requestedStatus = RunStatus.PAUSED;
  r.message = `pausing after round ${r.round}'s ${RoundPhase[r.phase]}`;
  return [statusSnapshot(r)];
}

/** ResumeRun: a paused run goes on, a failed one retries its phase; a pending pause is withdrawn. */
export function resumeChange(r: Run): EventInit[] | undefined {
  if (r.status === RunStatus.RUNNING && r.requestedStatus === RunStatus.PAUSED) {
    r.requestedStatus = RunStatus.UNSPECIFIED;
    r.message = "";
    return [statusSnapshot(r)];
  }
  if (r.status === RunStatus.RUNNING || r.status === RunStatus.PENDING) return undefined;
  if (r.status !== RunStatus.PAUSED && r.status !== RunStatus.FAILED) return refuse(r, "resumed");
  r.status = RunStatus.RUNNING;
  r.message = "resumed";
  r.driver = "";
  if (r.current !== undefined) r.current.attempts = 0;
  return [statusSnapshot(r)];
}

/** CancelRun: after the current phase when a phase may be running; at once otherwise. It cannot be resumed. */
export function cancelChange(r: Run): EventInit[] | undefined {
  if (r.status === RunStatus.CANCELLED || r.requestedStatus === RunStatus.CANCELLED) return undefined;
  if (r.status === RunStatus.SUCCEEDED) return refuse(r, "cancelled");
  if (r.status === RunStatus.RUNNING) {
    r.requestedStatus = RunStatus.CANCELLED;
    r.message = `cancelling after round ${r.round}'s ${RoundPhase[r.phase]}`;
    return [statusSnapshot(r)];
  }
  r.status = RunStatus.CANCELLED;
  r.requestedStatus = RunStatus.UNSPECIFIED;
  r.message = "cancelled";
  r.driver = "";
  return [statusSnapshot(r)];
}
