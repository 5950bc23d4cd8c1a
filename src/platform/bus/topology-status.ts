import type { StreamInfo } from "@nats-io/jetstream";
import type { Bus } from "./connection.js";
import { retryBudget, withBusRetry } from "./retry.js";
import { kvStreamName, objectStreamName, type TopologyDeclaration } from "./topology.js";

// What the server says about a declaration's streams and buckets right now: replicas, leader and
// the state of every peer. `autodidact doctor` prints it; the cluster chaos bench reads leaders
// from it to pick which node to kill.

/** One peer of a replicated stream. */
export interface PeerState {
  /** Server name (`n1`, `nats-0`). */
  readonly name: string;
  readonly leader: boolean;
  /** Caught up with the leader (the leader itself is current). */
  readonly current: boolean;
  /** Unreachable as far as the leader knows. */
  readonly offline: boolean;
  /** Operations behind the leader. */
  readonly lag: number;
  /** Since the leader last heard from it, in ms (0 for the leader). */
  readonly activeMs: number;
}

/** One stream, KV bucket or object store of a declaration as the server reports it. */
export interface AssetStatus {
  readonly kind: "stream" | "kv" | "object store";
  /** The declared name (the bucket name for buckets). */
  readonly name: string;
  /** The JetStream stream behind it. */
  readonly stream: string;
  /** Configured replicas (undefined when the stream could not be read). */
  readonly replicas: number | undefined;
  /** The current leader's server name; undefined while none is elected (or on a single server without cluster). */
  readonly leader: string | undefined;
  /** Leader first, then the followers. */
  readonly peers: readonly PeerState[];
  readonly messages: number;
  /** Why the stream could not be read (missing, no leader answering, …). */
  readonly error?: string;
}

/** A declaration's assets with the JetStream stream behind each. */
function assetsOf(declaration: TopologyDeclaration): Array<Pick<AssetStatus, "kind" | "name" | "stream">> {
  return [
    ...declaration.streams.map((s) => ({ kind: "stream" as const, name: s.name, stream: s.name })),
    ...declaration.kvBuckets.map((b) => ({ kind: "kv" as const, name: b.name, stream: kvStreamName(b.name) })),
    ...declaration.objectStores.map((o) => ({ kind: "object store" as const, name: o.name, stream: objectStreamName(o.name) })),
  ];
}

/** The peers of a stream from its info (leader first). */
export function peersOf(info: StreamInfo): PeerState[] {
  const c = info.cluster;
  if (c === undefined) return [];
  const out: PeerState[] = [];
  if (c.leader !== undefined && c.leader !== "") out.push({ name: c.leader, leader: true, current: true, offline: false, lag: 0, activeMs: 0 });
  for (const r of c.replicas ?? []) {
    out.push({
      name: r.name,
      leader: false,
      current: r.current,
      offline: r.offline === true,
      lag: r.lag ?? 0,
      activeMs: Math.round((r.active ?? 0) / 1_000_000),
    });
  }
  return out;
}

/**
 * Reads every stream and bucket of a declaration: configured replicas, leader, each peer's state
 * and message count. A stream that cannot be read (missing, or no leader answers within
 * `retryForMs`) is reported with its error instead of failing the whole report.
 */
export async function describeTopology(bus: Bus, declaration: TopologyDeclaration, options: { retryForMs?: number } = {}): Promise<AssetStatus[]> {
  return Promise.all(
    assetsOf(declaration).map(async (a): Promise<AssetStatus> => {
      try {
        const info = await withBusRetry(retryBudget(options.retryForMs ?? 5_000, bus.timeoutMs, () => bus.nc.isClosed()), () =>
          bus.jsm.streams.info(a.stream),
        );
        const leader = info.cluster?.leader;
        return {
          ...a,
          replicas: info.config.num_replicas,
          leader: leader === undefined || leader === "" ? undefined : leader,
          peers: peersOf(info),
          messages: info.state.messages,
        };
      } catch (err) {
        return { ...a, replicas: undefined, leader: undefined, peers: [], messages: 0, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

/** One server as the peers of every asset show it: how many it leads and holds, and whether it is reachable. */
export interface ServerState {
  readonly name: string;
  /** Assets it leads. */
  readonly leads: number;
  /** Assets it holds a replica of (leading included). */
  readonly replicas: number;
  /** Assets whose leader reports it offline. */
  readonly offline: number;
  /** Assets where it is behind the leader. */
  readonly lagging: number;
}

/** The servers behind a topology report, by name. */
export function serversOf(assets: readonly AssetStatus[]): ServerState[] {
  const by = new Map<string, { leads: number; replicas: number; offline: number; lagging: number }>();
  for (const a of assets) {
    for (const p of a.peers) {
      const s = by.get(p.name) ?? { leads: 0, replicas: 0, offline: 0, lagging: 0 };
      by.set(p.name, s);
      s.replicas++;
      if (p.leader) s.leads++;
      if (p.offline) s.offline++;
      else if (!p.current) s.lagging++;
    }
  }
  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, s]) => ({ name, ...s }));
}
