// Test support for the bus runtime's own tests: a small topology declaration of its own, since the
// platform knows nothing of the mesh's (that one lives in src/domain/topology).
import { PoisonSubjects, subjectToken, type TopologyDeclaration } from "./topology.js";

/** Stream names of the test topology. */
export const TestStreams = {
  /** Work items, `work.<task>`. */
  Work: "WORK",
  /** A second stream, `other.>`, for drift and conflict tests. */
  Other: "OTHER",
  /** Poison records of the generic consumer. */
  Poison: "POISON",
} as const;

/** `work.<task>` */
export const workSubject = (task: string): string => `work.${subjectToken("task", task)}`;

/** KV bucket and object store of the test topology. */
export const TestBuckets = { Kv: "test-kv", Objects: "test-objects" } as const;

/** The test topology: two streams, the poison stream, one KV bucket, one object store. */
export const TEST_TOPOLOGY: TopologyDeclaration = {
  streams: [
    { name: TestStreams.Work, subjects: ["work.>"], purpose: "work items" },
    { name: TestStreams.Other, subjects: ["other.>"], purpose: "other items" },
    { name: TestStreams.Poison, subjects: [PoisonSubjects.all], purpose: "poison records" },
  ],
  kvBuckets: [{ name: TestBuckets.Kv, history: 1, purpose: "test state" }],
  objectStores: [{ name: TestBuckets.Objects, purpose: "test files" }],
};
