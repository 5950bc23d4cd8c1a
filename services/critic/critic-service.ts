import { CriticService } from "../../src/gen/autodidact/v1/critic_pb.js";
import { notYet, type ServiceSpec } from "../../src/host/index.js";
import { createInfoHandler, implement } from "../../src/rpc/index.js";

/** Flags of the critic service beyond the ones every service takes. */
export const criticOptions = {
  task: { type: "list", help: "task packs this instance handles", env: "AUTODIDACT_TASKS", default: ["addition"] },
} as const;

/** The critic service: judges every proposed sample with its own model or method */
export const criticService: ServiceSpec<typeof criticOptions> = {
  name: "critic",
  description: "judges every proposed sample with its own model or method",
  options: criticOptions,
  async start(ctx) {
    const info = createInfoHandler(CriticService, { instanceId: ctx.instanceId, tasks: ctx.config.task });
    return {
      services: [
        implement(CriticService, {
          getInfo: () => info(),
          score() {
            throw notYet("Score needs the critic kinds (critics and consensus issue)");
          },
          swapModel() {
            throw notYet("SwapModel needs live model swaps (critics and consensus issue)");
          },
          getAgreement() {
            throw notYet("GetAgreement needs agreement metrics (critics and consensus issue)");
          },
        }),
      ],
    };
  },
};
