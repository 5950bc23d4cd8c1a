import { isKvConflict, type Bus } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { openConsensusPolicyRecords, type ConsensusPolicyRecords } from "../registry/index.js";
import { createConsensusPolicy, type ConsensusPolicy, type ConsensusPolicySpec } from "./policy.js";
import { policyFromProto, policyToProto } from "./policy-proto.js";

/** Where a consensus worker gets the policy for a task; called once per sample, at its first event. */
export type PolicyProvider = (task: string) => ConsensusPolicy | Promise<ConsensusPolicy>;

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Versioned consensus policies, stored in their wire form by the registry (its consensus policy
 * key space: this store is a client of src/domain/registry and never opens the bucket). The monitor's
 * Get/SetConsensusPolicy RPCs and the CLI go through it; consensus workers read it through
 * {@link PolicyStore.provider}, so a new version applies to every sample whose first event comes after it.
 */
export interface PolicyStore {
  /** The current version of a named policy, or null when it was never set. */
  get(name?: string): Promise<ConsensusPolicy | null>;
  /**
   * Validates and stores a new version (current version + 1; the spec's own version is ignored).
   * With `expectedVersion` (0 = "must not exist yet"), refuses with Aborted unless the stored
   * version is that one, so two operators cannot silently overwrite each other.
   */
  set(spec: Omit<ConsensusPolicySpec, "version"> & { version?: number }, options?: { expectedVersion?: number; nowMs?: number }): Promise<ConsensusPolicy>;
  /**
   * A policy provider for consensus workers: the policy named after the task if one exists, else
   * `default`, else `fallback`; FailedPrecondition when there is none. Reads are cached for `cacheMs`.
   */
  provider(options?: { fallback?: ConsensusPolicy; cacheMs?: number }): PolicyProvider;
}

function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new AutodidactError(`invalid policy name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-"`, Code.InvalidArgument);
  }
  return name;
}

/** Opens the policy store on the registry (its bucket is created by the mesh topology). */
export async function openPolicyStore(bus: Bus): Promise<PolicyStore> {
  const records: ConsensusPolicyRecords = openConsensusPolicyRecords(bus);

  const read = async (name: string): Promise<{ policy: ConsensusPolicy; revision: number } | null> => {
    const stored = await records.get(checkName(name));
    if (stored === null) return null;
    try {
      return { policy: policyFromProto(stored.policy), revision: stored.revision };
    } catch (err) {
      throw new AutodidactError(`stored consensus policy ${name} is unreadable: ${String(err)}`, Code.DataLoss, { cause: err });
    }
  };

  const store: PolicyStore = {
    async get(name = "default") {
      return (await read(name))?.policy ?? null;
    },
    async set(spec, options = {}) {
      const name = checkName(spec.name ?? "default");
      // Validate before touching the store: a bad spec never reaches the workers.
      createConsensusPolicy({ ...spec, name, version: spec.version ?? 0 });
      for (let attempt = 1; ; attempt++) {
        const current = await read(name);
        const currentVersion = current?.policy.version ?? 0;
        if (options.expectedVersion !== undefined && options.expectedVersion !== currentVersion) {
          throw new AutodidactError(
            `consensus policy ${name} is at version ${currentVersion}, not ${options.expectedVersion}: re-read it and retry`,
            Code.Aborted,
            { details: { name, currentVersion, expectedVersion: options.expectedVersion } },
          );
        }
        const next = createConsensusPolicy({ ...spec, name, version: currentVersion + 1 });
        try {
          await records.put(name, policyToProto(next, options.nowMs ?? Date.now()), current?.revision ?? 0);
          return next;
        } catch (err) {
          const lost = isKvConflict(err) || (err instanceof AutodidactError && err.code === Code.AlreadyExists);
          if (!lost || attempt >= 10) throw err;
          // Someone else wrote in between: with an expected version that is now a refusal, else retry.
        }
      }
    },
    provider(options = {}) {
      const cacheMs = options.cacheMs ?? 1_000;
      const cache = new Map<string, { at: number; policy: ConsensusPolicy | null }>();
      const cached = async (name: string): Promise<ConsensusPolicy | null> => {
        const hit = cache.get(name);
        if (hit !== undefined && Date.now() - hit.at < cacheMs) return hit.policy;
        const policy = await store.get(name);
        cache.set(name, { at: Date.now(), policy });
        return policy;
      };
      return async (task: string) => {
        const own = NAME.test(task) ? await cached(task) : null;
        const policy = own ?? (await cached("default")) ?? options.fallback;
        if (policy === undefined) {
          throw new AutodidactError(
            `no consensus policy for task ${JSON.stringify(task)}: set "${task}" or "default" (SetConsensusPolicy)`,
            Code.FailedPrecondition,
          );
        }
        return policy;
      };
    },
  };
  return store;
}
