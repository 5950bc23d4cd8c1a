import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { notYet, type ServiceSpec } from "../../src/host/index.js";
import { createInfoHandler, implement } from "../../src/rpc/index.js";

/** Flags of the generator service beyond the ones every service takes. */
export const generatorOptions = {
  task: { type: "list", help: "task packs this instance handles", env: "AUTODIDACT_TASKS", default: ["addition"] },
} as const;

/** The generator service: proposes synthetic samples with the promoted model */
export const generatorService: ServiceSpec<typeof generatorOptions> = {
  name: "generator",
  description: "proposes synthetic samples with the promoted model",
  options: generatorOptions,
  async start(ctx) {
    const info = createInfoHandler(GeneratorService, { instanceId: ctx.instanceId, tasks: ctx.config.task });
    return {
      services: [
        implement(GeneratorService, {
          getInfo: () => info(),
          generate() {
            throw notYet("Generate needs the proposing loop (critics and consensus issue)");
          },
        }),
      ],
    };
  },
};
