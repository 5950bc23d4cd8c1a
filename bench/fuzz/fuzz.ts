/**
 * The fuzz run: random and mutated protobuf bytes sent to every gRPC method of every service (a raw
 * grpc-js client with identity serializers, so the bytes reach the server as they are) and published
 * onto every NATS subject the services consume, against the real mesh (nats-server + every service as
 * a supervised process). Checks: no process exits, every service still SERVING on health afterwards,
 * every call ends with a clear status (INTERNAL / UNKNOWN / UNAVAILABLE count as failures), and every
 * message a consumer could not handle is terminated and recorded on the POISON stream rather than
 * redelivered forever. Used by `npm run bench:fuzz` (bench/fuzz/bench.ts) and tests/fuzz.test.ts.
 */
import { fromBinary, type DescMethod } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, status as GrpcStatus, type ClientDuplexStream, type ClientReadableStream, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus, startNatsServer, type Bus, type NatsServerProcess, type PoisonRecord } from "../../src/platform/bus/index.js";
import { startLocalMesh, type LocalMesh, type MeshMember } from "../../apps/cli/local-mesh.js";
import { createRng } from "../../src/engine/index.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health_pb.js";
import { createRegistry, listCheckpointFiles } from "../../src/domain/registry/index.js";
import { createClient, DEFAULT_MAX_MESSAGE_BYTES } from "../../src/platform/rpc/index.js";
import { saveTinyDecoder } from "../../src/domain/serving/test-models.js";
import { readStream } from "../chaos/streams.js";
import { mutate, pickMutation, type Mutation } from "./mutate.js";
import { DEFAULT_DEADLINE_MS, FUZZ_LINEAGE, rpcTargets, subjectTargets, type RpcTarget, type SubjectTarget } from "./targets.js";
import { ensureMeshTopology, Streams } from "../../src/domain/topology/index.js";

/** Knobs of one fuzz run. */
export interface FuzzOptions {
  seed: number;
  /** Total cases (gRPC calls + NATS publishes). */
  cases: number;
  /** Share of the cases published onto NATS subjects (default 0.25). */
  busShare?: number;
  /** Calls in flight at once (default 8). */
  concurrency?: number;
  /** Include the 1–4 MiB field and over-the-limit payload mutations (default true). */
  big?: boolean;
  /** Longest wait for the consumers to settle afterwards, in ms (default 180 s). */
  settleTimeoutMs?: number;
  log?: (line: string) => void;
}

/** One call that ended in a status counted as a failure. */
export interface FuzzFailure {
  readonly target: string;
  readonly mutation: Mutation;
  readonly code: string;
  readonly details: string;
  readonly bytesHex: string;
  readonly size: number;
}

/** What a fuzz run did and found. */
export interface FuzzReport {
  seed: number;
  cases: number;
  rpcCases: number;
  busCases: number;
  methods: number;
  subjects: number;
  /** Service processes that exited during the run (must be 0). */
  crashes: number;
  crashDetails: string[];
  /** Services answering SERVING on health after the run. */
  serving: number;
  services: number;
  /** gRPC status name → calls. */
  statusHistogram: Record<string, number>;
  /** Method → calls that ended DEADLINE_EXCEEDED or CANCELLED (streams that stay open, by design; hangs otherwise). */
  deadlineByMethod: Record<string, number>;
  /** Method → calls that hung: a unary call, or a stream not meant to stay open (or silent), ended on its deadline / CANCELLED. */
  hangsByMethod: Record<string, number>;
  /** Mutation → calls/publishes. */
  mutationHistogram: Record<string, number>;
  failures: number;
  failureExamples: FuzzFailure[];
  /** Lines the services logged about internal errors (stack traces of INTERNAL answers). */
  internalErrorLines: string[];
  /** Publishes the server refused (payload over the NATS max_payload). */
  busRefused: number;
  busPublished: number;
  /** Published messages that do not decode as the subject's message type. */
  busUndecodable: number;
  /** POISON records of fuzz messages, and those expected (each undecodable message × each consuming durable). */
  poisonRecorded: number;
  poisonExpected: number;
  poisonMissing: number;
  /** Poison records whose delivery count exceeds the consumer's max_deliver (redelivered past its limit). */
  poisonOverDelivered: number;
  maxPoisonDeliveries: number;
  /** Durables with messages still pending, unacknowledged or being redelivered after the settle time. */
  unsettledDurables: string[];
  casesPerS: number;
  /** The peer: valid (unmutated) seed requests per second, measured in the same run. */
  validPerS: number;
  totalMs: number;
}

/** Payloads above this size always get {@link DEFAULT_DEADLINE_MS}. */
const BIG_PAYLOAD_BYTES = 64 * 1024;

const FAILURE_CODES = new Set<number>([GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.UNAVAILABLE]);

/** How one call ended: its status and how many messages the server streamed before it. */
interface CallOutcome {
  code: number;
  details: string;
  messages: number;
}

/**
 * Whether a call that ended this way hung: DEADLINE_EXCEEDED or CANCELLED (the harness never cancels)
 * is a pass only for a stream meant to stay open that sent something first; anything else that ends
 * on its deadline is a handler that never answered its input.
 */
export function isHang(target: Pick<RpcTarget, "staysOpen">, outcome: CallOutcome): boolean {
  if (outcome.code !== GrpcStatus.DEADLINE_EXCEEDED && outcome.code !== GrpcStatus.CANCELLED) return false;
  return !(target.staysOpen && outcome.code === GrpcStatus.DEADLINE_EXCEEDED && outcome.messages > 0);
}
const statusName = (code: number): string => GrpcStatus[code] ?? `CODE_${code}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const identity = (b: Buffer): Buffer => b;
const bump = (m: Record<string, number>, k: string, by = 1): void => void (m[k] = (m[k] ?? 0) + by);

/** Sends raw bytes as the request of `method` and resolves with the final status and the messages streamed before it. */
function callRaw(client: Client, method: DescMethod, bytes: Uint8Array, deadlineMs: number): Promise<CallOutcome> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const deadline = Date.now() + deadlineMs;
  let messages = 0;
  const received = (): void => void messages++;
  return new Promise((resolve) => {
    const done = (s: StatusObject | ServiceError): void => resolve({ code: s.code, details: s.details, messages });
    const ok = (): void => resolve({ code: GrpcStatus.OK, details: "", messages: 1 });
    switch (method.methodKind) {
      case "unary":
        client.makeUnaryRequest(path, identity, identity, body, new Metadata(), { deadline }, (err) => (err ? done(err) : ok()));
        return;
      case "server_streaming": {
        const call = client.makeServerStreamRequest(path, identity, identity, body, new Metadata(), { deadline });
        call.on("data", received);
        call.on("error", () => undefined);
        call.on("status", done);
        return;
      }
      case "client_streaming": {
        const call = client.makeClientStreamRequest(path, identity, identity, new Metadata(), { deadline }, (err) => (err ? done(err) : ok()));
        call.write(body);
        call.end();
        return;
      }
      case "bidi_streaming": {
        const call = client.makeBidiStreamRequest(path, identity, identity, new Metadata(), { deadline });
        call.on("data", received);
        call.on("error", () => undefined);
        call.on("status", done);
        call.write(body);
        call.end();
        return;
      }
    }
  });
}

/**
 * Whether a stream answers at all (a first message, or a status other than DEADLINE_EXCEEDED / CANCELLED)
 * within the normal deadline; the call is cancelled at its first message. Asked of a stream meant to stay
 * open that was silent through its short deadline: on a loaded machine (other cases' megabyte payloads
 * being decoded by the same service) that can be slowness rather than a hang.
 */
function answersAtAll(client: Client, method: DescMethod, bytes: Uint8Array): Promise<boolean> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const deadline = Date.now() + DEFAULT_DEADLINE_MS;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (answered: boolean): void => {
      if (settled) return;
      settled = true;
      resolve(answered);
    };
    let call: ClientReadableStream<Buffer> | ClientDuplexStream<Buffer, Buffer>;
    if (method.methodKind === "server_streaming") {
      call = client.makeServerStreamRequest(path, identity, identity, body, new Metadata(), { deadline });
    } else {
      const duplex = client.makeBidiStreamRequest(path, identity, identity, new Metadata(), { deadline });
      duplex.write(body);
      duplex.end();
      call = duplex;
    }
    call.on("data", () => {
      settle(true);
      call.cancel();
    });
    call.on("error", () => undefined);
    call.on("status", (st: StatusObject) => settle(st.code !== GrpcStatus.DEADLINE_EXCEEDED && st.code !== GrpcStatus.CANCELLED));
  });
}

/** The fuzz mesh: one generator serving a tiny model, three rules critics, consensus, a trainer, a monitor. */
function fuzzMembers(stateDir: string, modelDir: string): MeshMember[] {
  const critic = (name: string): MeshMember => ({ name, kind: "critic", args: ["--kind", "rules", "--ack-wait", "5s", "--cache-dir", join(stateDir, "cache", name), "--log-level", "warn"] });
  return [
    { name: "generator", kind: "generator", args: ["--model", modelDir, "--batch-size", "4", "--cache-dir", join(stateDir, "cache", "generator"), "--log-level", "warn"] },
    critic("critic-a"),
    critic("critic-b"),
    critic("critic-c"),
    { name: "consensus", kind: "consensus", args: ["--log-level", "warn"] },
    { name: "trainer", kind: "trainer", args: ["--data-dir", join(stateDir, "trainer"), "--lineages", "main", "--log-level", "warn"] },
    {
      name: "monitor",
      kind: "monitor",
      args: ["--cache-dir", join(stateDir, "cache", "monitor"), "--eval-limit", "2", "--eval-min-difficulty", "1", "--eval-max-difficulty", "2", "--dashboard-port", "-1", "--log-level", "warn"],
    },
  ];
}

/** Runs one fuzz run; never throws for a finding (the report says), only when the mesh cannot start. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => undefined);
  const t0 = Date.now();
  const rng = createRng(`fuzz:${options.seed}`);
  const concurrency = options.concurrency ?? 8;
  const big = options.big ?? true;
  const busShare = options.busShare ?? 0.25;
  const stateDir = await mkdtemp(join(tmpdir(), "autodidact-fuzz-"));
  const critics = ["critic-a", "critic-b", "critic-c"];
  const report: FuzzReport = {
    seed: options.seed, cases: 0, rpcCases: 0, busCases: 0, methods: 0, subjects: 0, crashes: 0, crashDetails: [], serving: 0, services: 0,
    statusHistogram: {}, deadlineByMethod: {}, hangsByMethod: {}, mutationHistogram: {}, failures: 0, failureExamples: [], internalErrorLines: [], busRefused: 0, busPublished: 0,
    busUndecodable: 0, poisonRecorded: 0, poisonExpected: 0, poisonMissing: 0, poisonOverDelivered: 0, maxPoisonDeliveries: 0,
    unsettledDurables: [], casesPerS: 0, validPerS: 0, totalMs: 0,
  };
  let nats: NatsServerProcess | undefined;
  let bus: Bus | undefined;
  let mesh: LocalMesh | undefined;
  const clients = new Map<string, Client>();
  try {
    const modelDir = join(stateDir, "tiny-model");
    await saveTinyDecoder(modelDir, 11);
    nats = await startNatsServer({ storeDir: join(stateDir, "nats") });
    bus = await connectBus({ servers: nats.url, name: "fuzz-harness", waitOnFirstConnect: true });
    await ensureMeshTopology(bus);
    // A registered, promoted checkpoint of another lineage: version fields of seeds reach real records.
    const registry = createRegistry(bus, { cacheDir: join(stateDir, "cache", "harness") });
    const v = await registry.allocateVersion(FUZZ_LINEAGE);
    await registry.putCheckpoint(
      { lineage: FUZZ_LINEAGE, version: v, parentVersion: 0, round: 0, status: "promoted", statusReason: "fuzz base", files: await listCheckpointFiles(modelDir), manifest: { task: "addition" }, metrics: {}, createdAt: new Date().toISOString() },
      modelDir,
    );
    await registry.setPromoted(FUZZ_LINEAGE, v);

    const members = fuzzMembers(stateDir, modelDir);
    mesh = await startLocalMesh({
      stateDir,
      natsUrl: nats.url,
      members,
      readyTimeoutMs: 180_000,
      onAlert: (name, line) => {
        if (/internal error|uncaught|unhandled/i.test(line) && report.internalErrorLines.length < 50) report.internalErrorLines.push(`${name}: ${line.slice(0, 2_000)}`);
      },
    });
    const running = mesh;
    let stopping = false;
    running.supervisor.on("exited", (name, code, signal) => {
      if (stopping) return;
      report.crashes++;
      report.crashDetails.push(`${name}: code ${code} signal ${signal}`);
    });
    log(`seed ${options.seed}: mesh up in ${((Date.now() - t0) / 1000).toFixed(1)} s (state ${stateDir})`);

    const rpc = rpcTargets({ generator: "generator", critic: "critic-a", trainer: "trainer", monitor: "monitor" });
    const bus_ = subjectTargets(critics);
    report.methods = rpc.length;
    report.subjects = bus_.length;
    const clientFor = (member: string): Client | undefined => {
      let address: string;
      try {
        address = running.address(member);
      } catch {
        return undefined;
      }
      let c = clients.get(address);
      if (c === undefined) {
        c = new Client(address, credentials.createInsecure(), { "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 });
        clients.set(address, c);
      }
      return c;
    };

    // The peer: valid seed requests of the cheap unary methods, measured first.
    const cheap = rpc.filter((t) => t.method.methodKind === "unary" && /getInfo|check|getPolicy|history|getAgreement|getConsensusPolicy/.test(t.method.localName));
    // Same concurrency as the fuzz cases, so the two rates compare.
    const validStart = performance.now();
    let validCount = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < 400; i = next++) {
          const t = cheap[i % cheap.length]!;
          const c = clientFor(t.member);
          if (c === undefined) continue;
          await callRaw(c, t.method, t.seeds[0]!, t.deadlineMs);
          validCount++;
        }
      }),
    );
    report.validPerS = validCount / ((performance.now() - validStart) / 1000);

    // Cases: deterministic for the seed; a few over-the-limit ones first, one per target; then every
    // method's empty (all-defaults) request once, the commonest malformed request, so a handler that
    // never answers its defaults is found by every run, whatever the seed.
    type Case = { kind: "rpc"; target: RpcTarget; mutation: Mutation; bytes: Uint8Array } | { kind: "bus"; target: SubjectTarget; mutation: Mutation; bytes: Uint8Array; id: string };
    let index = 0;
    const firstPass = rpc.length + bus_.length;
    const makeCase = (i: number): Case => {
      if (i >= firstPass && i < firstPass + rpc.length) {
        const target = rpc[i - firstPass]!;
        return { kind: "rpc", target, mutation: "empty", bytes: mutate(rng, target.seeds[0]!, "empty", DEFAULT_MAX_MESSAGE_BYTES).bytes };
      }
      const forced = big && i < rpc.length + bus_.length && i % 9 === 0;
      if (i < rpc.length + bus_.length ? i >= rpc.length : rng.next() < busShare) {
        const target = i < rpc.length + bus_.length ? bus_[i - rpc.length]! : bus_[rng.int(bus_.length)]!;
        const mutation = forced ? "oversized" : pickMutation(rng, big);
        const seed = target.seeds[rng.int(target.seeds.length)]!;
        // NATS refuses payloads over max_payload (1 MiB by default): the oversized case is just over it.
        return { kind: "bus", target, mutation, bytes: mutate(rng, seed, mutation, 1024 * 1024 + 1).bytes, id: `fuzz-${options.seed}-${i}` };
      }
      const target = i < rpc.length ? rpc[i]! : rpc[rng.int(rpc.length)]!;
      const mutation = forced ? "oversized" : pickMutation(rng, big);
      const seed = target.seeds[rng.int(target.seeds.length)]!;
      return { kind: "rpc", target, mutation, bytes: mutate(rng, seed, mutation, DEFAULT_MAX_MESSAGE_BYTES + 1024).bytes };
    };

    const undecodable: Array<{ id: string; target: SubjectTarget }> = [];
    const runCase = async (c: Case): Promise<void> => {
      bump(report.mutationHistogram, c.mutation);
      if (c.kind === "bus") {
        report.busCases++;
        let decodes = true;
        try {
          fromBinary(c.target.schema, c.bytes);
        } catch {
          decodes = false;
        }
        try {
          await bus!.publish(c.target.subject, c.bytes, { msgId: c.id, retryForMs: 30_000 });
          report.busPublished++;
          if (!decodes) {
            report.busUndecodable++;
            undecodable.push({ id: c.id, target: c.target });
          }
        } catch {
          report.busRefused++;
        }
        return;
      }
      report.rpcCases++;
      const name = `${c.target.method.parent.typeName}/${c.target.method.name}@${c.target.member}`;
      let client = clientFor(c.target.member);
      for (let waited = 0; client === undefined && waited < 60_000; waited += 200) {
        await sleep(200);
        client = clientFor(c.target.member);
      }
      if (client === undefined) {
        bump(report.statusHistogram, "NO_SERVER");
        report.failures++;
        return;
      }
      // A short deadline (Watch) cannot carry a payload of megabytes to the server: those get the normal
      // one, so the server's answer to them (RESOURCE_EXHAUSTED, INVALID_ARGUMENT...) is what is judged.
      const deadlineMs = c.bytes.byteLength > BIG_PAYLOAD_BYTES ? Math.max(c.target.deadlineMs, DEFAULT_DEADLINE_MS) : c.target.deadlineMs;
      const outcome = await callRaw(client, c.target.method, c.bytes, deadlineMs);
      const { code, details } = outcome;
      const method = `${c.target.method.parent.typeName.split(".").pop()}/${c.target.method.name}`;
      let hang = isHang(c.target, outcome);
      if (hang && c.target.staysOpen && outcome.code === GrpcStatus.DEADLINE_EXCEEDED && outcome.messages === 0) {
        hang = !(await answersAtAll(client, c.target.method, c.bytes));
      }
      if (code === GrpcStatus.DEADLINE_EXCEEDED || code === GrpcStatus.CANCELLED) bump(hang ? report.hangsByMethod : report.deadlineByMethod, method);
      bump(report.statusHistogram, statusName(code));
      if (FAILURE_CODES.has(code) || hang) {
        report.failures++;
        if (report.failureExamples.length < 25) {
          const what = hang ? `${statusName(code)} (hang: ${outcome.messages} messages before it)` : statusName(code);
          report.failureExamples.push({ target: name, mutation: c.mutation, code: what, details, bytesHex: Buffer.from(c.bytes.subarray(0, 96)).toString("hex"), size: c.bytes.byteLength });
        }
      }
    };

    const fuzzStart = performance.now();
    const workers = Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = index++;
        if (i >= options.cases) return;
        const c = makeCase(i);
        await runCase(c);
        report.cases++;
        if (report.cases % 1000 === 0) log(`  ${report.cases} cases, ${report.failures} failures, ${report.crashes} crashes`);
      }
    });
    await Promise.all(workers);
    report.casesPerS = report.cases / ((performance.now() - fuzzStart) / 1000);
    log(`${report.cases} cases in ${((performance.now() - fuzzStart) / 1000).toFixed(1)} s; settling the consumers`);

    // Every consuming durable settles: nothing pending, unacknowledged or being redelivered.
    const durables = new Map<string, string>();
    for (const t of bus_) for (const [stream, durable] of t.durables) durables.set(durable, stream);
    const deadline = Date.now() + (options.settleTimeoutMs ?? 180_000);
    for (;;) {
      const unsettled: string[] = [];
      for (const [durable, stream] of durables) {
        try {
          const info = await bus.jsm.consumers.info(stream, durable);
          if (info.num_pending > 0 || info.num_ack_pending > 0 || info.num_redelivered > 0) unsettled.push(`${durable} (pending ${info.num_pending}, unacked ${info.num_ack_pending}, redelivering ${info.num_redelivered})`);
        } catch (err) {
          unsettled.push(`${durable} (${err instanceof Error ? err.message : String(err)})`);
        }
      }
      report.unsettledDurables = unsettled;
      if (unsettled.length === 0 || Date.now() > deadline) break;
      await sleep(1_000);
    }

    // Poison: each undecodable message terminated and recorded once per consuming durable, never past max_deliver.
    const maxDeliver = new Map<string, number>();
    for (const [durable, stream] of durables) maxDeliver.set(durable, (await bus.jsm.consumers.info(stream, durable)).config.max_deliver ?? 5);
    const recorded = new Map<string, Set<string>>();
    for (const m of await readStream(bus, Streams.Poison)) {
      const r = JSON.parse(new TextDecoder().decode(m.data)) as PoisonRecord;
      if (r.msgId === null || !r.msgId.startsWith(`fuzz-${options.seed}-`)) continue;
      report.poisonRecorded++;
      report.maxPoisonDeliveries = Math.max(report.maxPoisonDeliveries, r.deliveryCount);
      if (r.deliveryCount > (maxDeliver.get(r.durable) ?? 5)) report.poisonOverDelivered++;
      const set = recorded.get(r.msgId) ?? new Set<string>();
      recorded.set(r.msgId, set);
      set.add(r.durable);
    }
    for (const u of undecodable) {
      for (const [, durable] of u.target.durables) {
        report.poisonExpected++;
        if (recorded.get(u.id)?.has(durable) !== true) report.poisonMissing++;
      }
    }

    // Still serving: every process answers SERVING, and none exited.
    for (const m of members) {
      report.services++;
      let address: string;
      try {
        address = running.address(m.name);
      } catch {
        continue;
      }
      const health = createClient(Health, address, { deadlineMs: 10_000 });
      try {
        const r = await health.check({ service: "" });
        if (r.status === HealthCheckResponse_ServingStatus.SERVING) report.serving++;
      } catch {
        // counted as not serving
      } finally {
        health.close();
      }
    }
    stopping = true;
  } finally {
    for (const c of clients.values()) c.close();
    await mesh?.stop().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
  }
  report.totalMs = Date.now() - t0;
  const ok = report.crashes === 0 && report.failures === 0 && report.serving === report.services && report.poisonMissing === 0 && report.poisonOverDelivered === 0 && report.unsettledDurables.length === 0;
  if (ok) await rm(stateDir, { recursive: true, force: true });
  else log(`state kept in ${stateDir}`);
  return report;
}
