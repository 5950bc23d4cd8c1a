import { kvStreamName, objectStreamName, PoisonSubjects } from "../bus/index.js";

// Generic NATS permission data and the JetStream API subjects behind each kind of access. Which
// identity gets which access is a system's declaration (the mesh's: src/domain/topology).

/** Allow / deny subject lists for one direction, as nats-server's `permissions` block takes them. */
export interface SubjectRules {
  allow: string[];
  deny: string[];
}

/** The NATS permissions of one identity. */
export interface NatsPermissions {
  publish: SubjectRules;
  subscribe: SubjectRules;
}

/** NATS subject matching: `*` matches one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/**
 * Whether `perms` let a connection publish (or subscribe) to a concrete subject, as nats-server
 * decides it: some allow matches and no deny does. Tests use it to check a role table without a server.
 */
export function permits(perms: NatsPermissions, op: "publish" | "subscribe", subject: string): boolean {
  const r = perms[op];
  return r.allow.some((a) => subjectMatches(a, subject)) && !r.deny.some((d) => subjectMatches(d, subject));
}

const API = "$JS.API";

/**
 * The JetStream API subjects behind each kind of access, so a declaration names the access
 * ("consumes durable D of stream S") and never spells `$JS.API…` itself.
 */
export const JetStreamGrants = {
  /** Account info: every client's first JetStream call. */
  accountInfo: (): string => `${API}.INFO`,
  /** Looking a stream up (verifying a topology, binding a KV bucket or object store). */
  streamInfo: (stream: string): string => `${API}.STREAM.INFO.${stream}`,
  /**
   * A durable pull consumer: look it up, create / update it (both API forms nats.js may use), pull
   * from it, acknowledge, and record a poison message on `poison.<stream>`. `durable` may be `*`.
   */
  durableConsumer: (stream: string, durable: string): string[] => [
    `${API}.CONSUMER.INFO.${stream}.${durable}`,
    `${API}.CONSUMER.CREATE.${stream}.${durable}`,
    `${API}.CONSUMER.CREATE.${stream}.${durable}.>`,
    `${API}.CONSUMER.DURABLE.CREATE.${stream}.${durable}`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.${durable}`,
    `$JS.ACK.${stream}.${durable}.>`,
    PoisonSubjects.of(stream),
  ],
  /** Listing a stream's consumers and reading their state (lag), without consuming. */
  consumerObserver: (stream: string): string[] => [
    `${API}.CONSUMER.LIST.${stream}`,
    `${API}.CONSUMER.NAMES.${stream}`,
    `${API}.CONSUMER.INFO.${stream}.*`,
  ],
  /**
   * Reading single messages of a stream by sequence (or the next one on a subject from a sequence),
   * with no consumer at all: read-only, and it cannot pull from any durable of the stream.
   */
  messageGet: (stream: string): string => `${API}.STREAM.MSG.GET.${stream}`,
  /**
   * Reading a stream as KV and object store clients do: stream info, message get (direct and API),
   * and the ephemeral ordered consumers nats.js uses for `keys`, `watch` and object reads (with
   * flow control). Read-only: none of these subjects stores or removes a message.
   */
  streamReader: (stream: string): string[] => [
    `${API}.STREAM.INFO.${stream}`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
    `${API}.CONSUMER.CREATE.${stream}`,
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.INFO.${stream}.>`,
    `${API}.CONSUMER.DELETE.${stream}.>`,
    `${API}.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ],
  /** Reading a KV bucket. */
  kvReader: (bucket: string): string[] => JetStreamGrants.streamReader(kvStreamName(bucket)),
  /** Writing keys matching `keys` (a KV key pattern: `a.b`, `a.>`, `>`) of a KV bucket. */
  kvWriter: (bucket: string, keys: string): string => `$KV.${bucket}.${keys}`,
  /** Reading an object store. */
  objectReader: (bucket: string): string[] => JetStreamGrants.streamReader(objectStreamName(bucket)),
  /** Writing an object store (purge: nats.js removes the chunks of a replaced or failed upload). */
  objectWriter: (bucket: string): string[] => [`$O.${bucket}.>`, `${API}.STREAM.PURGE.${objectStreamName(bucket)}`],
} as const;
