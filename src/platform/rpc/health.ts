import type { DescService } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../errors/index.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { implement, type ServiceImplementation } from "./service.js";

/** The health states of grpc.health.v1 (SERVING, NOT_SERVING...), re-exported so services need not import generated code. */
export { ServingStatus };

/**
 * Sets and reads what `grpc.health.v1.Health` reports, per service, so a service can say NOT_SERVING
 * while it cannot do its job (no model loaded, NATS down) and orchestrators route around it.
 */
export interface HealthReporter {
  /** Sets the status of one service (descriptor or fully-qualified name; "" = the whole server). */
  setStatus(service: DescService | string, status: ServingStatus): void;
  /** Current status, or undefined for a service this server does not know. */
  getStatus(service: DescService | string): ServingStatus | undefined;
}

/** The health service of one server, its reporter, and a close() that ends every Watch stream. */
export interface Health {
  readonly implementation: ServiceImplementation;
  readonly reporter: HealthReporter;
  /** Marks everything NOT_SERVING, tells watchers, and ends their streams (used by shutdown). */
  close(): void;
}

function nameOf(service: DescService | string): string {
  return typeof service === "string" ? service : service.typeName;
}

/**
 * Creates the health service for the given service names (plus "" for the whole server), all
 * SERVING at first.
 */
export function createHealth(serviceNames: readonly string[]): Health {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  for (const name of serviceNames) statuses.set(name, ServingStatus.SERVING);
  let waiters: Array<() => void> = [];
  let closed = false;
  const notify = (): void => {
    const current = waiters;
    waiters = [];
    for (const wake of current) wake();
  };

  const reporter: HealthReporter = {
    setStatus(service, status) {
      if (closed) return;
      statuses.set(nameOf(service), status);
      notify();
    },
    getStatus(service) {
      return statuses.get(nameOf(service));
    },
  };

  const implementation = implement(Health, {
    check(request) {
      const status = statuses.get(request.service);
      if (status === undefined) throw new AutodidactError(`unknown service "${request.service}"`, Code.NotFound);
      return { status };
    },
    async *watch(request, ctx) {
      let last: ServingStatus | undefined;
      for (;;) {
        const current = statuses.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          last = current;
          yield { status: current };
        }
        if (closed || ctx.signal.aborted) return;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            ctx.signal.removeEventListener("abort", done);
            resolve();
          };
          waiters.push(done);
          ctx.signal.addEventListener("abort", done, { once: true });
        });
      }
    },
  });

  return {
    implementation,
    reporter,
    close() {
      if (closed) return;
      for (const name of statuses.keys()) statuses.set(name, ServingStatus.NOT_SERVING);
      closed = true;
      notify();
    },
  };
}
