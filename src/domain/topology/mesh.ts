import { ensureTopology, type Bus, type TopologyDeclaration, type TopologyOptions, type TopologyReport } from "../../platform/bus/index.js";
import { KV_BUCKETS, OBJECT_STORES } from "./buckets.js";
import { STREAMS } from "./streams.js";

/** Every stream, KV bucket and object store of the mesh: what services, `autodidact topology` and `up` ensure. */
export const MESH_TOPOLOGY: TopologyDeclaration = {
  streams: STREAMS,
  kvBuckets: KV_BUCKETS,
  objectStores: OBJECT_STORES,
};

/** Creates or verifies the mesh's topology (idempotent); see `ensureTopology` in src/platform/bus. */
export function ensureMeshTopology(bus: Bus, options: TopologyOptions = {}): Promise<TopologyReport> {
  return ensureTopology(bus, MESH_TOPOLOGY, options);
}
