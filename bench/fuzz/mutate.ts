/**
 * Seeded protobuf mutations for the fuzz run: from a valid encoded message to bytes that are almost
 * right (bit flips, truncation, garbage fields with odd field numbers and wire types, huge length
 * prefixes, over-long varints, repeated fields) or not protobuf at all (random bytes, oversized
 * payloads). Deterministic for a seed, so a failing case can be re-created from its seed and index.
 */
import type { Rng } from "../../src/engine/index.js";

/** Names of the mutations, for the report's per-mutation counts. */
export const MUTATIONS = [
  "valid",
  "bitflip",
  "truncate",
  "garbage-field",
  "wire-type",
  "huge-length",
  "overlong-varint",
  "concat",
  "random",
  "empty",
  "big-field",
  "oversized",
] as const;
/** One mutation kind. */
export type Mutation = (typeof MUTATIONS)[number];

/** One fuzz input. */
export interface FuzzInput {
  readonly mutation: Mutation;
  readonly bytes: Uint8Array;
}

/** Protobuf varint encoding of a non-negative integer (up to 2^53). */
export function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const tag = (field: number, wireType: number): number[] => varint(field * 8 + wireType);

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const total = parts.reduce((acc, p) => acc + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A field number that is valid, unusual (reserved range, maximum) or out of range. */
function oddFieldNumber(rng: Rng): number {
  const pick = rng.int(6);
  if (pick === 0) return 1 + rng.int(20);
  if (pick === 1) return 19_000 + rng.int(1_000); // reserved for the implementation
  if (pick === 2) return 536_870_911; // the largest field number
  if (pick === 3) return 0; // invalid
  if (pick === 4) return 536_870_912 + rng.int(1000); // beyond the largest
  return 1 + rng.int(100_000);
}

/** A random field with a random (possibly invalid) wire type and a payload that may or may not fit it. */
function garbageField(rng: Rng): Uint8Array {
  const wireType = rng.int(8); // 6 and 7 are not wire types
  const head = tag(oddFieldNumber(rng), wireType);
  switch (wireType) {
    case 0:
      return concat(head, varint(rng.int(2 ** 31)));
    case 1:
      return concat(head, randomBytes(rng, rng.int(3) === 0 ? rng.int(8) : 8));
    case 2: {
      const n = rng.int(64);
      return concat(head, varint(n), randomBytes(rng, rng.int(4) === 0 ? rng.int(n + 1) : n));
    }
    case 5:
      return concat(head, randomBytes(rng, 4));
    default:
      return concat(head, randomBytes(rng, rng.int(16)));
  }
}

/**
 * One mutated input from `seed` (a valid encoded message). `oversizedBytes` is the size of the
 * "oversized" mutation (bigger than the receiver's limit); 0 turns it into a 1 MiB field instead.
 */
export function mutate(rng: Rng, seed: Uint8Array, mutation: Mutation, oversizedBytes: number): FuzzInput {
  const bytes = ((): Uint8Array => {
    switch (mutation) {
      case "valid":
        return seed;
      case "bitflip": {
        if (seed.length === 0) return new Uint8Array([rng.int(256)]);
        const out = seed.slice();
        const flips = 1 + rng.int(8);
        for (let i = 0; i < flips; i++) {
          const at = rng.int(out.length);
          out[at] = out[at]! ^ (1 << rng.int(8));
        }
        return out;
      }
      case "truncate":
        return seed.slice(0, seed.length === 0 ? 0 : rng.int(seed.length));
      case "garbage-field": {
        const at = rng.int(seed.length + 1);
        return concat(seed.subarray(0, at), garbageField(rng), seed.subarray(at));
      }
      case "wire-type": {
        // Re-tag the first field with another wire type, keeping its payload.
        if (seed.length === 0) return concat(tag(1, rng.int(8)), randomBytes(rng, 4));
        const first = seed[0]!;
        const out = seed.slice();
        out[0] = (first & ~0x07) | ((first & 0x07) ^ (1 + rng.int(7)));
        return out;
      }
      case "huge-length": {
        const lengths = [2 ** 31 - 1, 2 ** 32 + 5, 2 ** 28, 0xffffffff, 2 ** 53 - 1];
        return concat(seed, tag(1 + rng.int(12), 2), varint(lengths[rng.int(lengths.length)]!), randomBytes(rng, rng.int(16)));
      }
      case "overlong-varint": {
        // 11+ continuation bytes: longer than any varint may be.
        const n = 11 + rng.int(20);
        return concat(seed, tag(1 + rng.int(12), 0), new Uint8Array(n).fill(0xff), [0x01]);
      }
      case "concat":
        return concat(seed, seed.length > 0 ? seed.subarray(0, 1 + rng.int(seed.length)) : [], garbageField(rng));
      case "random":
        return randomBytes(rng, rng.int(257));
      case "empty":
        return new Uint8Array(0);
      case "big-field": {
        // A large string/bytes field (1 to 4 MiB): under the transport limit, far over any sane field.
        const n = (1 + rng.int(4)) * 1024 * 1024;
        return concat(seed, tag(1 + rng.int(8), 2), varint(n), new Uint8Array(n).fill(0x41));
      }
      case "oversized": {
        const n = oversizedBytes > 0 ? oversizedBytes : 1024 * 1024;
        return concat(tag(1 + rng.int(8), 2), varint(n), new Uint8Array(n).fill(0x42));
      }
    }
  })();
  return { mutation, bytes };
}

/** Draws a mutation: mostly structural ones, rarely the expensive big ones. */
export function pickMutation(rng: Rng, allowBig: boolean): Mutation {
  const r = rng.next();
  if (allowBig && r < 0.003) return "oversized";
  if (allowBig && r < 0.01) return "big-field";
  const cheap: Mutation[] = ["valid", "bitflip", "bitflip", "truncate", "garbage-field", "garbage-field", "wire-type", "huge-length", "overlong-varint", "concat", "random", "random", "empty"];
  return cheap[rng.int(cheap.length)]!;
}
