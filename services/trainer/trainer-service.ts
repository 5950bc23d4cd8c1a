import { TrainerService } from "../../src/gen/autodidact/v1/trainer_pb.js";
import { notYet, type ServiceSpec } from "../../src/host/index.js";
import { createInfoHandler, implement } from "../../src/rpc/index.js";

/** Flags of the trainer service beyond the ones every service takes. */
export const trainerOptions = {
  task: { type: "list", help: "task packs this instance handles", env: "AUTODIDACT_TASKS", default: ["addition"] },
} as const;

/** The trainer service: fine-tunes on consensus-accepted samples mixed with real anchor data */
export const trainerService: ServiceSpec<typeof trainerOptions> = {
  name: "trainer",
  description: "fine-tunes on consensus-accepted samples mixed with real anchor data",
  options: trainerOptions,
  async start(ctx) {
    const info = createInfoHandler(TrainerService, { instanceId: ctx.instanceId, tasks: ctx.config.task });
    return {
      services: [
        implement(TrainerService, {
          getInfo: () => info(),
          startRound() {
            throw notYet("StartRound needs training rounds (trainer issue)");
          },
          fetchCheckpoint() {
            throw notYet("FetchCheckpoint needs versioned checkpoints (trainer issue)");
          },
        }),
      ],
    };
  },
};
