import type { DescMethod } from "@bufbuild/protobuf";
import { AutodidactError, Code } from "../errors/index.js";
import { ConductorService } from "../../gen/autodidact/v1/conductor_pb.js";
import { CriticService } from "../../gen/autodidact/v1/critic_pb.js";
import { MonitorService } from "../../gen/autodidact/v1/monitor_pb.js";
import { TrainerService } from "../../gen/autodidact/v1/trainer_pb.js";
import type { Authorize, CallContext, Principal } from "../rpc/index.js";
import { createLogger, type Logger } from "../telemetry/index.js";
import { findToken, type AccessList, type Role } from "./access.js";

const nameOf = (m: Pick<DescMethod, "name" | "parent">): string => `${m.parent.typeName}/${m.name}`;

/**
 * The administrative RPCs: they change what is served or trained (models, the promoted pointer,
 * policies, training rounds, stored evaluations the gate compares against). Only the `admin` role
 * may call them once authorization is on. Built from the descriptors so a renamed RPC fails to compile.
 */
export const ADMIN_METHODS: ReadonlySet<string> = new Set(
  [
    CriticService.method.swapModel,
    MonitorService.method.promote,
    MonitorService.method.rollback,
    MonitorService.method.setPolicy,
    MonitorService.method.setConsensusPolicy,
    // Overwrites the stored evaluation that later gates use as the incumbent's score, and costs a
    // full held-out run: an operator action, not a read.
    MonitorService.method.evaluate,
    TrainerService.method.startRound,
    // Runs of the loop and the models they start from.
    ConductorService.method.createRun,
    ConductorService.method.pauseRun,
    ConductorService.method.resumeRun,
    ConductorService.method.cancelRun,
    ConductorService.method.importModel,
  ].map(nameOf),
);

/** Services every caller may use without credentials: kubelet probes and grpcurl's schema discovery. */
const OPEN_SERVICES: ReadonlySet<string> = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/** The role a method needs once authorization is on; undefined = open to anyone (health, reflection). */
export function requiredRole(method: Pick<DescMethod, "name" | "parent">): Role | undefined {
  if (OPEN_SERVICES.has(method.parent.typeName)) return undefined;
  return ADMIN_METHODS.has(nameOf(method)) ? "admin" : "reader";
}

/** Whether a principal holds `role` (`admin` implies `reader`). */
export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.includes(role) || (role === "reader" && principal.roles.includes("admin"));
}

/**
 * For handlers whose request decides whether the call is administrative (Generate with
 * `publish`, which writes proposed samples): PERMISSION_DENIED unless the caller holds `role`.
 * A server without authorization (ctx.principal undefined, local development) lets it through.
 */
export function requireRole(ctx: Pick<CallContext, "principal" | "method">, role: Role, what: string): void {
  if (ctx.principal === undefined) return;
  if (!hasRole(ctx.principal, role)) {
    throw new AutodidactError(`${ctx.principal.identity} may not ${what}: needs role ${role}`, Code.PermissionDenied);
  }
}

/** Options of {@link createAuthorizer}. */
export interface AuthorizerOptions {
  /** Who may call what; undefined = authorization off (every caller may call everything). */
  readonly access: AccessList | undefined;
  /** Whether the server speaks TLS (bearer tokens in plain text draw a warning). */
  readonly tls: boolean;
  readonly logger?: Logger;
}

let warnedOpen = false;
const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;

/**
 * The server's authorize hook: authenticates the caller by `authorization: Bearer <token>` metadata
 * or, failing that, by its verified client certificate's common name (mTLS), then checks the
 * method's {@link requiredRole}. No credentials => UNAUTHENTICATED; a known identity without the
 * role => PERMISSION_DENIED. Administrative calls are logged with the identity (never the token).
 * Without an access list every call passes, with one warning per process that admin RPCs are open.
 */
export function createAuthorizer(options: AuthorizerOptions): Authorize {
  const log = options.logger ?? createLogger("auth");
  const access = options.access;
  if (access === undefined) {
    if (!warnedOpen) {
      warnedOpen = true;
      log.warn("gRPC authorization is off: administrative RPCs are open to every caller that can connect; set --auth-file", {
        adminMethods: [...ADMIN_METHODS],
      });
    }
    return () => undefined;
  }
  if (!options.tls && access.tokens.length > 0) {
    log.warn("bearer tokens are accepted over plain-text gRPC: set --tls-cert/--tls-key outside a trusted network");
  }
  const authenticate = (ctx: CallContext): Principal | undefined => {
    const headers = ctx.metadata.get("authorization");
    if (headers.length > 0) {
      const match = headers.length === 1 && typeof headers[0] === "string" ? BEARER.exec(headers[0]) : null;
      if (match === null) throw new AutodidactError("malformed authorization metadata: expected one `Bearer <token>`", Code.Unauthenticated);
      const entry = findToken(access, match[1]!);
      if (entry === undefined) throw new AutodidactError("unknown bearer token", Code.Unauthenticated);
      return { identity: entry.identity, roles: entry.roles, via: "token" };
    }
    const cn = ctx.peerCertificate?.subject?.CN;
    if (typeof cn === "string" && cn.length > 0) {
      const entry = access.certificates.find((c) => c.commonName === cn);
      return { identity: cn, roles: entry?.roles ?? [], via: "certificate" };
    }
    return undefined;
  };
  return (ctx) => {
    const role = requiredRole(ctx.method);
    if (role === undefined) return undefined;
    const method = nameOf(ctx.method);
    const principal = authenticate(ctx);
    if (principal === undefined) {
      throw new AutodidactError(`${method} needs credentials: send \`authorization: Bearer <token>\` metadata or a client certificate`, Code.Unauthenticated);
    }
    if (!hasRole(principal, role)) {
      log.warn("call refused", { method, identity: principal.identity, via: principal.via, peer: ctx.peer, needs: role });
      throw new AutodidactError(`${principal.identity} may not call ${method}: needs role ${role}`, Code.PermissionDenied);
    }
    if (role === "admin") log.info("administrative call", { method, identity: principal.identity, via: principal.via, peer: ctx.peer });
    return principal;
  };
}
