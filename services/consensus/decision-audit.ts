// Evidence of exactly-once decisions that does not rest on JetStream's duplicate window. Decisions
// are published with the sample id as message id into a stream that drops repeats for two
// minutes, so reading the stream cannot show a second decision made inside that window. A core
// NATS subscription on `decisions.>` sees every publish, including those the stream then drops;
// and the ledger holds the one decision the gate let through, which every published one must be.
import { createHash } from "node:crypto";
import { fromBinary } from "@bufbuild/protobuf";
import type { Subscription } from "@nats-io/transport-node";
import type { Bus } from "../../src/platform/bus/index.js";
import { Subjects } from "../../src/domain/topology/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { ConsensusLedger } from "./ledger.js";
import { unb64 } from "./record.js";

/** What a {@link DecisionAudit} saw. */
export interface DecisionAuditReport {
  /** Decision messages seen published (every publish, including repeats the stream dropped). */
  publishes: number;
  /** Samples with at least one decision seen (or added from the stream). */
  samples: number;
  /** Samples with two or more different decisions: must be 0. */
  decidedTwice: number;
  /** Repeated publishes of an identical decision (a re-publish after a crash; consumers dedupe them). */
  copies: number;
  /** Messages on the subject that are not decisions. */
  undecodable: number;
  /** Times the audit's connection dropped: publishes made while it was away were not seen. */
  disconnects: number;
  /** Of the samples passed to {@link DecisionAudit.report}, those with no decision seen. */
  unseen: number;
  /** A few samples decided twice, with their deciders. */
  examples: string[];
}

/** Published decisions compared with the ledger's records. */
export interface LedgerComparison {
  /** Samples compared. */
  samples: number;
  /** Distinct decisions seen that are not the one their sample's record holds (none recorded, or another): must be 0. */
  notInLedger: number;
  examples: string[];
}

/** One distinct decision of a sample: its bytes (decoded only to name its decider) and how often it was published. */
interface Seen {
  readonly data: Uint8Array;
  publishes: number;
}

/** The decider of a decision's bytes, for the examples of a report. */
function deciderOf(seen: Seen): string {
  try {
    return fromBinary(DecisionSchema, seen.data).deciderId;
  } catch {
    return "?";
  }
}

const digest = (data: Uint8Array): string => createHash("sha256").update(data).digest("base64");
const MAX_EXAMPLES = 5;

/**
 * Counts decisions by content per sample. Two decisions of one sample differ in their bytes (a
 * second win of the gate carries its own decider and decision time); a re-publish of the stored
 * decision is byte for byte the same, and counts as a copy.
 */
export class DecisionAudit {
  /** Distinct decisions per sample id, by the digest of their bytes. */
  private readonly bySample = new Map<string, Map<string, Seen>>();
  /** Distinct decisions keyed by their message id only, not decoded yet (see verify). */
  private readonly unverified = new Map<string, Map<string, Seen>>();
  private publishes = 0;
  private copies = 0;
  private undecodable = 0;
  private disconnects = 0;
  private sub: Subscription | undefined;
  private statuses: AsyncIterable<unknown> | undefined;
  private nc: Bus["nc"] | undefined;

  /**
   * Subscribes to `subject` (every decision by default) on the bus's core connection and returns
   * once the server has the subscription: every decision published from then on is seen, unless
   * the connection drops (counted in `disconnects`).
   */
  static async start(bus: Bus, subject: string = Subjects.allDecisions): Promise<DecisionAudit> {
    const audit = new DecisionAudit();
    audit.nc = bus.nc;
    // Decisions are published with the sample id as message id: the header names the sample without
    // decoding the message (an observer of a benchmark should cost its process little).
    audit.sub = bus.nc.subscribe(subject, { callback: (err, m) => void (err === null && audit.observe(m.data, m.headers?.get("Nats-Msg-Id") || undefined)) });
    const statuses = bus.nc.status();
    audit.statuses = statuses;
    void (async () => {
      for await (const s of statuses) if (s.type === "disconnect") audit.disconnects++;
    })().catch(() => undefined);
    await bus.nc.flush();
    return audit;
  }

  /** A decision published (as the subscription delivers it), with its message id (= sample id) when known. */
  observe(data: Uint8Array, sampleId?: string): void {
    this.publishes++;
    const seen = this.add(data, sampleId);
    if (seen !== undefined && seen.publishes++ > 0) this.copies++;
  }

  /** A decision known from elsewhere (read back from the stream): joins its sample's decisions, not a publish. */
  addStored(data: Uint8Array): void {
    this.add(data);
  }

  /** Whether `sampleId` has two or more different decisions. */
  decidedTwice(sampleId: string): boolean {
    return (this.bySample.get(sampleId)?.size ?? 0) > 1;
  }

  /** The counts so far; with `expected`, also how many of those samples had no decision seen. */
  report(expected?: Iterable<string>): DecisionAuditReport {
    this.verify();
    let decidedTwice = 0;
    const examples: string[] = [];
    for (const [sampleId, decisions] of this.bySample) {
      if (decisions.size < 2) continue;
      decidedTwice++;
      if (examples.length < MAX_EXAMPLES) examples.push(`${sampleId}: ${decisions.size} decisions by ${[...decisions.values()].map(deciderOf).join(", ")}`);
    }
    let unseen = 0;
    for (const id of expected ?? []) if (!this.bySample.has(id)) unseen++;
    return {
      publishes: this.publishes,
      samples: this.bySample.size,
      decidedTwice,
      copies: this.copies,
      undecodable: this.undecodable,
      disconnects: this.disconnects,
      unseen,
      examples,
    };
  }

  /**
   * Compares every decision seen with the ledger (the `consensus` KV bucket): a decision that is
   * not the one its sample's record holds got past the gate without winning it.
   */
  async compareWithLedger(bus: Bus): Promise<LedgerComparison> {
    this.verify();
    const ledger = await ConsensusLedger.open(bus);
    const out: LedgerComparison = { samples: 0, notInLedger: 0, examples: [] };
    const entries = [...this.bySample];
    for (let i = 0; i < entries.length; i += 64) {
      await Promise.all(
        entries.slice(i, i + 64).map(async ([sampleId, decisions]) => {
          const stored = (await ledger.read(sampleId))?.record.decision;
          const key = stored === undefined ? undefined : digest(unb64(stored));
          out.samples++;
          for (const [d, seen] of decisions) {
            if (d === key) continue;
            out.notInLedger++;
            if (out.examples.length < MAX_EXAMPLES) out.examples.push(`${sampleId}: a decision by ${deciderOf(seen)} ${stored === undefined ? "with no decided record" : "differs from the record"}`);
          }
        }),
      );
    }
    return out;
  }

  /**
   * Unsubscribes after a round trip to the server, so that what was published before the call
   * is counted; the counts stay readable.
   */
  async stop(): Promise<void> {
    await this.nc?.flush().catch(() => undefined);
    this.sub?.unsubscribe();
    this.sub = undefined;
    // The status iterator of nats.js ends with stop(); its typed interface only says AsyncIterable.
    (this.statuses as { stop?: () => void } | undefined)?.stop?.();
  }

  /**
   * Decodes what was keyed by its message id alone (once, after the fact, so observing stays cheap):
   * a message that is not a decision of that sample is dropped and counted as undecodable.
   */
  private verify(): void {
    for (const [sampleId, decisions] of [...this.unverified]) {
      for (const [key, seen] of decisions) {
        let ok = false;
        try {
          ok = fromBinary(DecisionSchema, seen.data).sampleId === sampleId;
        } catch {
          ok = false;
        }
        if (ok) continue;
        this.undecodable += seen.publishes;
        decisions.delete(key);
        this.bySample.get(sampleId)?.delete(key);
      }
      if (this.bySample.get(sampleId)?.size === 0) this.bySample.delete(sampleId);
    }
    this.unverified.clear();
  }

  private add(data: Uint8Array, knownSampleId?: string): Seen | undefined {
    let sampleId = knownSampleId;
    if (sampleId === undefined) {
      try {
        sampleId = fromBinary(DecisionSchema, data).sampleId;
      } catch {
        this.undecodable++;
        return undefined;
      }
    }
    let decisions = this.bySample.get(sampleId);
    if (decisions === undefined) {
      decisions = new Map();
      this.bySample.set(sampleId, decisions);
    }
    const key = digest(data);
    let seen = decisions.get(key);
    if (seen === undefined) {
      seen = { data, publishes: 0 };
      decisions.set(key, seen);
      if (knownSampleId !== undefined) {
        let pending = this.unverified.get(sampleId);
        if (pending === undefined) this.unverified.set(sampleId, (pending = new Map()));
        pending.set(key, seen);
      }
    }
    return seen;
  }
}
