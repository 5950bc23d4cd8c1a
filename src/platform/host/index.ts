// The service host: the one way a generator, critic, trainer or monitor process starts, serves and stops.
export { notYet, runService, startService, startServiceWithArgs } from "./run-service.js";
export type { ReadyLine, RunningService, ServiceConfig, ServiceContext, ServiceSpec, StartedService } from "./run-service.js";
