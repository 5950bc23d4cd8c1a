// Where the other services are (the conductor's flags) and the clients that call them. Calls that
// change the mesh (StartRound, Generate with publish, Promote, the policies) need the admin role once
// gRPC authorization is on: the conductor sends the token it was given like the CLI does.
import type { ClientOptions, RpcClient } from "../../src/platform/rpc/index.js";
import { createClient } from "../../src/platform/rpc/index.js";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { CriticService } from "../../src/gen/autodidact/v1/critic_pb.js";
import { GeneratorService } from "../../src/gen/autodidact/v1/generator_pb.js";
import { MonitorService } from "../../src/gen/autodidact/v1/monitor_pb.js";
import { TrainerService } from "../../src/gen/autodidact/v1/trainer_pb.js";

/** The services a conductor calls. */
export interface PeerAddresses {
  readonly monitor?: string | undefined;
  readonly generator?: string | undefined;
  /** Trainer per lineage; key `*` = every lineage without its own. */
  readonly trainers: ReadonlyMap<string, string>;
  /** Model critics by critic id (SERVE and PROBE call them). */
  readonly critics: ReadonlyMap<string, string>;
}

/**
 * Parses repeatable `NAME=ADDR` flags (`--trainer lineage-1=host:50051`); a value without `=` is
 * stored under `*` when `bare` allows it (one address for all).
 */
export function parseAssignments(flag: string, values: readonly string[], bare: boolean): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const eq = v.indexOf("=");
    const [name, addr] = eq < 0 ? ["*", v] : [v.slice(0, eq), v.slice(eq + 1)];
    if (eq < 0 && !bare) throw new AutodidactError(`--${flag} wants ID=ADDR, got ${JSON.stringify(v)}`, Code.InvalidArgument);
    if (name === "" || addr === "" || !/^[^\s]+:\d+$/.test(addr)) throw new AutodidactError(`--${flag} ${JSON.stringify(v)}: want ${bare ? "[NAME=]" : "NAME="}HOST:PORT`, Code.InvalidArgument);
    if (out.has(name)) throw new AutodidactError(`--${flag} names ${name} twice`, Code.InvalidArgument);
    out.set(name, addr);
  }
  return out;
}

type Security = Pick<ClientOptions, "credentials" | "channelOptions" | "metadata">;

/** Clients of the other services, created on first use and closed together. */
export class Peers {
  readonly addresses: PeerAddresses;
  readonly #security: Security;
  readonly #clients = new Map<string, { close(): void }>();

  constructor(addresses: PeerAddresses, security: Security) {
    this.addresses = addresses;
    this.#security = security;
  }

  /** The monitor (Promote evaluates a whole held-out set: a long deadline). */
  monitor(): RpcClient<typeof MonitorService> {
    return this.#client("monitor", MonitorService, this.#need("monitor", this.addresses.monitor), 30 * 60_000);
  }

  /** The generator (streams: callers pass a signal). */
  generator(): RpcClient<typeof GeneratorService> {
    return this.#client("generator", GeneratorService, this.#need("generator", this.addresses.generator), Infinity);
  }

  /** The trainer of a lineage. */
  trainer(lineage: string): RpcClient<typeof TrainerService> {
    const addr = this.addresses.trainers.get(lineage) ?? this.addresses.trainers.get("*");
    return this.#client(`trainer:${addr}`, TrainerService, this.#need(`trainer (lineage ${lineage})`, addr), Infinity);
  }

  /** A model critic by id. */
  critic(id: string): RpcClient<typeof CriticService> {
    return this.#client(`critic:${id}`, CriticService, this.#need(`critic ${id}`, this.addresses.critics.get(id)), 60_000);
  }

  /** What a run needs that the flags do not give (empty when it can be driven). */
  missing(lineages: readonly string[], modelCritics: readonly string[]): string[] {
    const out: string[] = [];
    if (this.addresses.monitor === undefined) out.push("--monitor");
    if (this.addresses.generator === undefined) out.push("--generator");
    for (const l of lineages) if (!this.addresses.trainers.has(l) && !this.addresses.trainers.has("*")) out.push(`--trainer ${l}=ADDR`);
    for (const c of modelCritics) if (!this.addresses.critics.has(c)) out.push(`--critic ${c}=ADDR`);
    return out;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  #need(what: string, addr: string | undefined): string {
    if (addr === undefined) throw new AutodidactError(`no address of the ${what}: start the conductor with its flag`, Code.FailedPrecondition);
    return addr;
  }

  #client<S extends typeof MonitorService | typeof GeneratorService | typeof TrainerService | typeof CriticService>(key: string, service: S, addr: string, deadlineMs: number): RpcClient<S> {
    let c = this.#clients.get(key);
    if (c === undefined) {
      c = createClient(service, addr, { deadlineMs, ...this.#security });
      this.#clients.set(key, c);
    }
    return c as RpcClient<S>;
  }
}
