// The idempotent write's two questions to the stream, on a real nats-server: "was this id stored?"
// (landedAck, which stores nothing) and "whose copy is stored?" (a second conditional write with the
// same expectation is a conflict, a retry of one's own is a success).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { connectBus, type Bus } from "./connection.js";
import { startNatsServer, type NatsServerProcess } from "./nats-server.js";
import { retryBudget } from "./retry.js";
import { TEST_TOPOLOGY, TestStreams, workSubject } from "./test-topology.js";
import { ensureTopology } from "./topology.js";
import { conditionalHeaders, isWrongLastSequence, landedAck, WriteConflictError, writeOnce } from "./write.js";

let server: NatsServerProcess;
let bus: Bus;

beforeAll(async () => {
  server = await startNatsServer();
  bus = await connectBus({ servers: server.url, name: "write-test" });
  await ensureTopology(bus, TEST_TOPOLOGY);
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

const budget = () => retryBudget(5_000, 2_000, () => bus.nc.isClosed());
const count = async (): Promise<number> => (await bus.jsm.streams.info(TestStreams.Work)).state.messages;

describe("idempotent writes", () => {
  it("landedAck finds a stored id with its sequence and stores nothing for an unknown one", async () => {
    const subject = workSubject("landed");
    const stored = await bus.publish(subject, new TextEncoder().encode("x"), { msgId: "landed-1" });
    const before = await count();
    expect((await landedAck(bus.nc, subject, "landed-1", budget()))?.seq).toBe(stored.seq);
    expect(await landedAck(bus.nc, subject, "never-sent", budget())).toBeUndefined();
    expect(await count()).toBe(before);
  });

  it("lets one conditional write per expected sequence through: a retry of one's own is a success, another writer's a conflict", async () => {
    const subject = workSubject("conditional");
    const base = (await bus.publish(subject, new TextEncoder().encode("base"))).seq;
    const mine = conditionalHeaders(subject, base);
    const first = await writeOnce(bus.nc, subject, new TextEncoder().encode("mine"), mine.headers, { budget: budget(), idempotent: true, writerId: mine.writerId });
    expect(first.duplicate).toBe(false);
    // The same write again (a retry after a lost reply): acknowledged with the stored sequence.
    const again = await writeOnce(bus.nc, subject, new TextEncoder().encode("mine"), mine.headers, { budget: budget(), idempotent: true, writerId: mine.writerId });
    expect(again.seq).toBe(first.seq);
    // Another writer that expected the same sequence: refused, as a conflict.
    const theirs = conditionalHeaders(subject, base, natsHeaders());
    const err = await writeOnce(bus.nc, subject, new TextEncoder().encode("theirs"), theirs.headers, { budget: budget(), idempotent: true, writerId: theirs.writerId }).catch((e: unknown) => e);
    // The server checks the shared id before the expectation: a duplicate whose stored copy is not theirs.
    expect(err).toBeInstanceOf(WriteConflictError);
    expect(isWrongLastSequence(err)).toBe(true);
    const last = await bus.jsm.streams.getMessage(TestStreams.Work, { last_by_subj: subject });
    expect(new TextDecoder().decode(last!.data)).toBe("mine");
  });
});
