import { PoisonSubjects, subjectToken } from "../../platform/bus/index.js";

/** Checkpoint work events, the last token of `checkpoints.<event>`: the trainer publishes them and they drive work. */
export type CheckpointEvent = "candidate" | "round";

/**
 * Promotion audit events, the last token of `checkpoints.audit.<event>`. They record what the
 * monitor did, after it did it; they are NOT the promotion signal. Generator and critics follow the
 * registry's promoted pointer (see `RegistryKeySpaces.promoted`), so nothing consumes these to act.
 */
export type PromotionAuditEvent = "promoted" | "rolled_back";

/**
 * Subject builders: every publisher and consumer takes subjects from here, so a typo cannot
 * send work into a subject no stream captures (which would fail with "no responders").
 */
export const Subjects = {
  /** `samples.proposed.<task>` */
  proposed: (task: string): string => `samples.proposed.${subjectToken("task", task)}`,
  /** All proposed samples, any task. */
  allProposed: "samples.proposed.>",
  /** `verdicts.<task>` */
  verdicts: (task: string): string => `verdicts.${subjectToken("task", task)}`,
  /** All verdicts. */
  allVerdicts: "verdicts.>",
  /** `decisions.<task>` */
  decisions: (task: string): string => `decisions.${subjectToken("task", task)}`,
  /** All decisions. */
  allDecisions: "decisions.>",
  /** `checkpoints.<event>`: checkpoint work (candidates to gate, round events). */
  checkpoints: (event: CheckpointEvent): string => `checkpoints.${event}`,
  /** `checkpoints.audit.<event>`: the monitor's audit record of a promotion or rollback (never a trigger). */
  promotionAudit: (event: PromotionAuditEvent): string => `checkpoints.audit.${event}`,
  /** All promotion audit records. */
  allPromotionAudits: "checkpoints.audit.>",
  /** Everything on the checkpoints stream: work and audit records. */
  allCheckpoints: "checkpoints.>",
  /** `poison.<stream>`: where a consumer records a message it terminated. */
  poison: PoisonSubjects.of,
  /** All poison records. */
  allPoison: PoisonSubjects.all,
  /** `runs.<runId>.events`: the events of one run of the loop (the conductor's). */
  runEvents: (runId: string): string => `runs.${subjectToken("run id", runId)}.events`,
  /** Every run's events. */
  allRunEvents: "runs.*.events",
} as const;
