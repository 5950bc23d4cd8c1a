import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { notYet, type ServiceSpec } from "../../src/host/index.js";
import { createInfoHandler, implement } from "../../src/rpc/index.js";

/** Flags of the monitor service beyond the ones every service takes. */
export const monitorOptions = {
  task: { type: "list", help: "task packs this instance handles", env: "AUTODIDACT_TASKS", default: ["addition"] },
} as const;

/** The monitor service: evaluates checkpoints on real data, detects collapse, promotes and rolls back */
export const monitorService: ServiceSpec<typeof monitorOptions> = {
  name: "monitor",
  description: "evaluates checkpoints on real data, detects collapse, promotes and rolls back",
  options: monitorOptions,
  async start(ctx) {
    const info = createInfoHandler(MonitorService, { instanceId: ctx.instanceId, tasks: ctx.config.task });
    return {
      services: [
        implement(MonitorService, {
          getInfo: () => info(),
          evaluate() {
            throw notYet("Evaluate needs the evaluation suite (monitor issue)");
          },
          promote() {
            throw notYet("Promote needs gated promotion (monitor issue)");
          },
          rollback() {
            throw notYet("Rollback needs the checkpoint registry (monitor issue)");
          },
          history() {
            throw notYet("History needs the checkpoint registry (monitor issue)");
          },
          lineage() {
            throw notYet("Lineage needs the checkpoint registry (monitor issue)");
          },
          getPolicy() {
            throw notYet("GetPolicy needs gated promotion (monitor issue)");
          },
          setPolicy() {
            throw notYet("SetPolicy needs gated promotion (monitor issue)");
          },
          getConsensusPolicy() {
            throw notYet("GetConsensusPolicy needs the consensus policy registry (critics and consensus issue)");
          },
          setConsensusPolicy() {
            throw notYet("SetConsensusPolicy needs the consensus policy registry (critics and consensus issue)");
          },
        }),
      ],
    };
  },
};
