import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Bus } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { ConsensusPolicySchema, type ConsensusPolicy } from "../../gen/autodidact/v1/consensus_pb.js";
import { checkKeyToken, registryKeys, RegistryStores } from "./bucket.js";

/** A consensus policy as stored (wire form) with the revision to update it by compare-and-set. */
export interface StoredConsensusPolicy {
  readonly policy: ConsensusPolicy;
  readonly revision: number;
}

/**
 * The registry's consensus policy key space (`consensus-policy.<name>`), in wire form. Versioning
 * and validation belong to the policy store (src/domain/consensus), which is its client.
 */
export interface ConsensusPolicyRecords {
  /** The stored policy, or null when never set; DataLoss when the stored bytes do not decode. */
  get(name: string): Promise<StoredConsensusPolicy | null>;
  /**
   * Writes a policy: creates it when `revision` is 0 (AlreadyExists if someone did first), else
   * only if it is still at `revision` (a compare-and-set conflict otherwise, see `isKvConflict`).
   */
  put(name: string, policy: ConsensusPolicy, revision: number): Promise<number>;
}

/** Opens the consensus policy records of the registry on a bus. */
export function openConsensusPolicyRecords(bus: Bus): ConsensusPolicyRecords {
  const stores = new RegistryStores(bus);
  return {
    async get(name) {
      const entry = await (await stores.kv()).get(registryKeys.consensusPolicy(checkKeyToken("policy name", name)));
      if (entry === null) return null;
      try {
        return { policy: fromBinary(ConsensusPolicySchema, entry.value), revision: entry.revision };
      } catch (err) {
        throw new AutodidactError(`stored consensus policy ${name} is unreadable: ${String(err)}`, Code.DataLoss, { cause: err });
      }
    },
    async put(name, policy, revision) {
      const key = registryKeys.consensusPolicy(checkKeyToken("policy name", name));
      const kv = await stores.kv();
      const bytes = toBinary(ConsensusPolicySchema, policy);
      return revision === 0 ? await kv.create(key, bytes) : await kv.update(key, bytes, revision);
    },
  };
}
