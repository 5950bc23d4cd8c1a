import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { isKvConflict, KvBuckets, openKv, type Bus, type KvStore } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { ConsensusPolicySchema } from "../../gen/autodidact/v1/consensus_pb.js";
import { createConsensusPolicy, type ConsensusPolicy, type ConsensusPolicySpec } from "./policy.js";
import { policyFromProto, policyToProto } from "./policy-proto.js";

/** Where a consensus worker gets the policy for a task; called once per sample, at its first event. */
export type PolicyProvider = (task: string) => ConsensusPolicy | Promise<ConsensusPolicy>;

/** Registry key prefix of consensus policies: `consensus-policy.<name>`. */
export const POLICY_KEY_PREFIX = "consensus-policy.";
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Versioned consensus policies in the `registry` KV bucket, stored in their wire form. The monitor's
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

/** Opens the policy store on the registry bucket (created by ensureTopology). */
export async function openPolicyStore(bus: Bus): Promise<PolicyStore> {
  const kv: KvStore = await openKv(bus, KvBuckets.Registry);

  const read = async (name: string): Promise<{ policy: ConsensusPolicy; revision: number } | null> => {
    const entry = await kv.get(`${POLICY_KEY_PREFIX}${checkName(name)}`);
    if (entry === null) return null;
    try {
      return { policy: policyFromProto(fromBinary(ConsensusPolicySchema, entry.value)), revision: entry.revision };
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
        const bytes = toBinary(ConsensusPolicySchema, policyToProto(next, options.nowMs ?? Date.now()));
        try {
          if (current === null) await kv.create(`${POLICY_KEY_PREFIX}${name}`, bytes);
          else await kv.update(`${POLICY_KEY_PREFIX}${name}`, bytes, current.revision);
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
