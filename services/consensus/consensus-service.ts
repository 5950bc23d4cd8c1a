import { createConsensusPolicy, openPolicyStore } from "../../src/domain/consensus/index.js";
import type { ServiceSpec } from "../../src/platform/host/index.js";
import { MESH_TOPOLOGY } from "../../src/domain/topology/index.js";
import { createConsensusWorker } from "./worker.js";
import type { ConsensusWorker } from "./worker-options.js";

/** Flags of the consensus service beyond the ones every service takes. */
export const consensusOptions = {
  consensusCritics: {
    type: "list",
    help: "expected critics of the fallback consensus policy (a policy set in the registry overrides it)",
    env: "AUTODIDACT_CONSENSUS_CRITICS",
  },
  consensusTimeout: { type: "duration", help: "vote timeout of the fallback consensus policy", default: 30_000, min: 1 },
  concurrency: { type: "int", help: "messages handled at once per consumer", default: 1024, min: 1, max: 100_000 },
  maxConcurrency: {
    type: "int",
    help: "how far the verdict window may widen when critics run apart (default 16 x --concurrency; held messages stay in memory)",
    min: 1,
    max: 1_000_000,
  },
  ackWait: {
    type: "duration",
    help: "how long the messages a crashed worker held wait before redelivery (keep it well below the policy timeout)",
    default: 5_000,
    min: 1_000,
  },
} as const;

/**
 * The consensus service: the only process that decides samples (critics only judge). With NATS
 * authentication on it runs under the consensus identity, the only one allowed to publish
 * decisions. Any number may run; the KV compare-and-set decides each sample once. It serves only
 * gRPC health.
 */
export const consensusService: ServiceSpec<typeof consensusOptions> = {
  name: "consensus",
  description: "decides every sample from its critics' verdicts (quorum policy, exactly once)",
  options: consensusOptions,
  topology: MESH_TOPOLOGY,
  async start(ctx) {
    const cfg = ctx.config;
    const expected = cfg.consensusCritics ?? [];
    const fallback =
      expected.length === 0
        ? undefined
        : createConsensusPolicy({
            name: "consensus-fallback",
            version: 0,
            kind: "k_of_n",
            k: Math.floor(expected.length / 2) + 1,
            expected,
            timeoutMs: cfg.consensusTimeout,
            onTimeout: "reject",
            note: "fallback of the consensus service: majority of the configured critics",
          });
    if (fallback === undefined) {
      ctx.logger.warn("no --consensus-critics: samples wait for a consensus policy set in the registry (SetConsensusPolicy)");
    }
    const store = await openPolicyStore(ctx.bus);
    const worker: ConsensusWorker = await createConsensusWorker({
      bus: ctx.bus,
      policyProvider: store.provider(fallback === undefined ? {} : { fallback }),
      id: `consensus-${ctx.instanceId}`,
      concurrency: cfg.concurrency,
      ...(cfg.maxConcurrency === undefined ? {} : { maxConcurrency: cfg.maxConcurrency }),
      // Short (live workers keep held messages alive with in-progress acks): after a crash, the held
      // samples and votes come back long before the policy timeout could decide without them.
      ackWaitMs: cfg.ackWait,
    });
    ctx.logger.info("consensus worker running", { id: worker.id });
    return {
      services: [],
      async stop() {
        await worker.stop();
      },
    };
  },
};
