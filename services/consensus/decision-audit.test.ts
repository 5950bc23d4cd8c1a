// The decision audit on a real nats-server: it sees a second decision of a sample that JetStream
// drops as a duplicate (same msg id inside the window), tells identical re-publishes apart, and
// finds decisions the ledger does not hold.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, openKv, startNatsServer, type Bus, type NatsServerProcess } from "../../src/platform/bus/index.js";
import { ensureMeshTopology, KvBuckets, Streams, Subjects } from "../../src/domain/topology/index.js";
import { DecisionSchema } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { createConsensusPolicy, policyToSpec } from "../../src/domain/consensus/index.js";
import { DecisionAudit } from "./index.js";
import { decidedRecord } from "./record.js";

let server: NatsServerProcess;
let bus: Bus;

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "decision-audit-test" });
  await ensureMeshTopology(bus);
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

const task = "audit";
const decision = (sampleId: string, deciderId: string, accepted: boolean): Uint8Array =>
  toBinary(DecisionSchema, create(DecisionSchema, { sampleId, task, accepted, deciderId, decidedAt: timestampFromMs(1_000) }));
const publish = (bytes: Uint8Array, sampleId: string) => bus.publish(Subjects.decisions(task), bytes, { msgId: sampleId });

describe("decision audit", () => {
  it("counts a second decision the stream drops, identical re-publishes apart, and decisions the ledger does not hold", async () => {
    const audit = await DecisionAudit.start(bus, Subjects.decisions(task));
    const first = decision("s1", "w1", true);
    expect((await publish(first, "s1")).duplicate).toBe(false);
    // Another worker's decision of the same sample: the stream drops it (same msg id), the audit sees it.
    expect((await publish(decision("s1", "w2", false), "s1")).duplicate).toBe(true);
    // The first decision again (a re-publish after a crash): a copy, not a second decision.
    expect((await publish(first, "s1")).duplicate).toBe(true);
    await publish(decision("s2", "w1", true), "s2");
    await bus.publish(Subjects.decisions(task), new Uint8Array([0xff, 0xff]), { msgId: "garbage" });
    await audit.stop();

    // The stream kept one message per msg id: s1's first decision, s2's, and the garbage.
    expect((await bus.jsm.streams.info(Streams.Decisions)).state.messages).toBe(3);
    const report = audit.report(["s1", "s2", "s3"]);
    expect(report).toMatchObject({ publishes: 5, samples: 2, decidedTwice: 1, copies: 1, undecodable: 1, unseen: 1, disconnects: 0 });
    expect(report.examples).toEqual(["s1: 2 decisions by w1, w2"]);
    expect(audit.decidedTwice("s1")).toBe(true);
    expect(audit.decidedTwice("s2")).toBe(false);

    // The ledger holds s1's first decision and nothing of s2: w2's decision and s2's are not the ledger's.
    const policy = policyToSpec(createConsensusPolicy({ version: 1, kind: "k_of_n", k: 1, expected: ["a"], timeoutMs: 1_000, onTimeout: "reject" }));
    const kv = await openKv(bus, KvBuckets.Consensus);
    await kv.createJson("s1", decidedRecord({ sampleId: "s1", task, policy, conflicts: [] }, first, 1_000, "w1"));
    const ledger = await audit.compareWithLedger(bus);
    expect(ledger.samples).toBe(2);
    expect(ledger.notInLedger).toBe(2);
    expect(ledger.examples.sort()).toEqual(["s1: a decision by w2 differs from the record", "s2: a decision by w1 with no decided record"]);

    // A decision read back from the stream joins its sample without counting as a publish.
    audit.addStored(decision("s3", "w3", true));
    expect(audit.report(["s3"])).toMatchObject({ publishes: 5, samples: 3, unseen: 0 });
  });
});
