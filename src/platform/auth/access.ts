import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { AutodidactError, Code } from "../errors/index.js";

/** The roles an identity can hold. `admin` may call administrative RPCs and implies `reader`. */
export const ROLES = ["admin", "reader"] as const;

/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** A bearer token entry: the server keeps only the token's sha256, never the token. */
export interface TokenEntry {
  readonly identity: string;
  /** Lowercase hex sha256 of the UTF-8 token. */
  readonly sha256: string;
  readonly roles: readonly Role[];
}

/** Roles of the client certificates (mTLS) whose subject common name matches. */
export interface CertificateEntry {
  readonly commonName: string;
  readonly roles: readonly Role[];
}

/**
 * Who may call what: the parsed `--auth-file`. Exists so that the server holds digests of tokens
 * (a leaked config does not grant access), each credential maps to a named identity (audit logs
 * name people and services, not secrets), and several tokens can be valid at once (rotation).
 */
export interface AccessList {
  readonly tokens: readonly TokenEntry[];
  readonly certificates: readonly CertificateEntry[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const IDENTITY = /^[A-Za-z0-9._@:\/-]{1,128}$/;

/** Hex sha256 of a token, the form an {@link AccessList} stores. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** A new random bearer token (256 bits, base64url) with its access-list entry. */
export function generateToken(identity: string, roles: readonly Role[]): { token: string; entry: TokenEntry } {
  checkIdentity(identity, "identity");
  const token = randomBytes(32).toString("base64url");
  return { token, entry: { identity, sha256: tokenDigest(token), roles: checkRoles(roles, identity) } };
}

function checkIdentity(value: unknown, where: string): string {
  if (typeof value !== "string" || !IDENTITY.test(value)) {
    throw new AutodidactError(`${where}: identity must be 1-128 characters of letters, digits and ._@:/-`, Code.InvalidArgument);
  }
  return value;
}

function checkRoles(value: unknown, where: string): Role[] {
  if (!Array.isArray(value)) throw new AutodidactError(`${where}: roles must be a list of ${ROLES.join(", ")}`, Code.InvalidArgument);
  for (const r of value) {
    if (!(ROLES as readonly unknown[]).includes(r)) throw new AutodidactError(`${where}: unknown role ${JSON.stringify(r)} (known: ${ROLES.join(", ")})`, Code.InvalidArgument);
  }
  return value as Role[];
}

/**
 * Parses an access list from JSON text:
 * `{"tokens":[{"identity","sha256","roles"}], "certificates":[{"commonName","roles"}]}`.
 * Rejects plain tokens, malformed digests, unknown roles and duplicates with InvalidArgument.
 */
export function parseAccessList(text: string, source = "--auth-file"): AccessList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new AutodidactError(`${source}: not valid JSON: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new AutodidactError(`${source}: expected an object with "tokens" and/or "certificates"`, Code.InvalidArgument);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (key !== "tokens" && key !== "certificates") throw new AutodidactError(`${source}: unknown key ${JSON.stringify(key)}`, Code.InvalidArgument);
  }
  const list = (key: string): unknown[] => {
    const v = obj[key] ?? [];
    if (!Array.isArray(v)) throw new AutodidactError(`${source}: "${key}" must be a list`, Code.InvalidArgument);
    return v;
  };
  const digests = new Set<string>();
  const tokens = list("tokens").map((e, i): TokenEntry => {
    const where = `${source}: tokens[${i}]`;
    if (e === null || typeof e !== "object") throw new AutodidactError(`${where} must be an object`, Code.InvalidArgument);
    const t = e as Record<string, unknown>;
    if ("token" in t) throw new AutodidactError(`${where}: store the token's sha256 ("sha256"), never the token itself`, Code.InvalidArgument);
    const identity = checkIdentity(t.identity, where);
    const sha256 = typeof t.sha256 === "string" ? t.sha256.toLowerCase() : "";
    if (!HEX64.test(sha256)) throw new AutodidactError(`${where}: "sha256" must be 64 hex digits`, Code.InvalidArgument);
    if (digests.has(sha256)) throw new AutodidactError(`${where}: the same token digest is listed twice`, Code.InvalidArgument);
    digests.add(sha256);
    return { identity, sha256, roles: checkRoles(t.roles, where) };
  });
  const names = new Set<string>();
  const certificates = list("certificates").map((e, i): CertificateEntry => {
    const where = `${source}: certificates[${i}]`;
    if (e === null || typeof e !== "object") throw new AutodidactError(`${where} must be an object`, Code.InvalidArgument);
    const c = e as Record<string, unknown>;
    const commonName = checkIdentity(c.commonName, where);
    if (names.has(commonName)) throw new AutodidactError(`${where}: common name ${commonName} is listed twice`, Code.InvalidArgument);
    names.add(commonName);
    return { commonName, roles: checkRoles(c.roles, where) };
  });
  return { tokens, certificates };
}

/** Loads `--auth-file`: a JSON file path, or the JSON itself when the value starts with `{`. */
export function loadAccessList(value: string): AccessList {
  if (value.trimStart().startsWith("{")) return parseAccessList(value, "--auth-file (inline JSON)");
  let text: string;
  try {
    text = readFileSync(value, "utf8");
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    throw new AutodidactError(`--auth-file: cannot read ${value} (${why})`, Code.InvalidArgument, { cause });
  }
  return parseAccessList(text, `--auth-file ${value}`);
}

/**
 * The entry of a presented token, comparing its digest with every entry in constant time (no early
 * exit), so response timing reveals neither which entry nor how much of a digest matched.
 */
export function findToken(access: AccessList, token: string): TokenEntry | undefined {
  const presented = createHash("sha256").update(token, "utf8").digest();
  let found: TokenEntry | undefined;
  for (const entry of access.tokens) {
    const same = timingSafeEqual(presented, Buffer.from(entry.sha256, "hex"));
    if (same && found === undefined) found = entry;
  }
  return found;
}
