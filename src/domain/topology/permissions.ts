import { declaredStreamNames } from "../../platform/bus/index.js";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { JetStreamGrants, type NatsPermissions } from "../../platform/nats-auth/index.js";
import { KV_BUCKETS, OBJECT_STORES } from "./buckets.js";
import { DURABLES } from "./durables.js";
import { KEY_SPACES, keyPattern } from "./key-spaces.js";
import { MESH_TOPOLOGY } from "./mesh.js";
import { STREAMS } from "./streams.js";
import { PUBLICATIONS, SUBSCRIPTIONS } from "./publications.js";
import { MESH_ROLES, type MeshIdentity, type MeshRole } from "./roles.js";

/** What every service needs: account info, verifying the topology (never creating it), replies on its inbox. */
function base(): NatsPermissions {
  return {
    publish: { allow: [JetStreamGrants.accountInfo(), ...declaredStreamNames(MESH_TOPOLOGY).map(JetStreamGrants.streamInfo)], deny: [] },
    subscribe: { allow: ["_INBOX.>"], deny: [] },
  };
}

/** Publish and subscribe grants of a service identity, each derived from one declaration of this module. */
function grants(identity: MeshIdentity): { publish: string[]; subscribe: string[] } {
  const role = identity.role;
  const has = (roles: readonly MeshRole[]): boolean => roles.includes(role);
  const publish = [
    ...PUBLICATIONS.filter((p) => has(p.publishers)).map((p) => p.subject),
    ...DURABLES.filter((d) => d.role === role).flatMap((d) => JetStreamGrants.durableConsumer(d.stream, d.grantedName(identity))),
    ...[...new Set(DURABLES.filter((d) => has(d.observers)).map((d) => d.stream))].flatMap(JetStreamGrants.consumerObserver),
    ...STREAMS.filter((s) => has(s.messageReaders ?? [])).map((s) => JetStreamGrants.messageGet(s.name)),
    ...STREAMS.filter((s) => has(s.readers ?? [])).flatMap((s) => JetStreamGrants.streamReader(s.name)),
    ...KV_BUCKETS.filter((b) => has(b.readers)).flatMap((b) => JetStreamGrants.kvReader(b.name)),
    ...KEY_SPACES.filter((k) => has(k.writers)).map((k) => JetStreamGrants.kvWriter(k.bucket, keyPattern(k))),
    ...OBJECT_STORES.filter((o) => has(o.readers)).flatMap((o) => JetStreamGrants.objectReader(o.name)),
    ...OBJECT_STORES.filter((o) => has(o.writers)).flatMap((o) => JetStreamGrants.objectWriter(o.name)),
  ];
  const subscribe = SUBSCRIPTIONS.filter((s) => has(s.subscribers)).map((s) => s.subject);
  return { publish, subscribe };
}

/**
 * Subjects only some roles may publish to (exclusive publications and key spaces). Every other
 * role gets them as explicit denies, so "only consensus decides" and "only the monitor moves the
 * promoted pointer" hold even if an allow list is later widened by mistake.
 */
function deniedTo(role: MeshRole): string[] {
  return [
    ...PUBLICATIONS.filter((p) => p.exclusive && !(p.publishers as readonly MeshRole[]).includes(role)).map((p) => p.subject),
    ...KEY_SPACES.filter((k) => k.exclusive && !(k.writers as readonly MeshRole[]).includes(role)).map((k) => JetStreamGrants.kvWriter(k.bucket, keyPattern(k))),
  ];
}

/**
 * The NATS permissions of one identity, derived from this module's declarations: what its role
 * publishes (PUBLICATIONS), the durables declared for it (DURABLES), the buckets it reads and the
 * key spaces it writes (KV_BUCKETS, KEY_SPACES, OBJECT_STORES), its core subscriptions, plus
 * explicit denies of what another role owns. The admin may do anything (it creates the topology).
 */
export function natsPermissions(identity: MeshIdentity): NatsPermissions {
  if (!(MESH_ROLES as readonly string[]).includes(identity.role)) {
    throw new AutodidactError(`unknown mesh role "${String(identity.role)}": use one of ${MESH_ROLES.join(", ")}`, Code.InvalidArgument);
  }
  if (identity.role === "admin") return { publish: { allow: [">"], deny: [] }, subscribe: { allow: [">"], deny: [] } };
  const perms = base();
  const own = grants(identity);
  const unique = (xs: string[]): string[] => [...new Set(xs)];
  perms.publish.allow = unique([...perms.publish.allow, ...own.publish]);
  perms.subscribe.allow = unique([...perms.subscribe.allow, ...own.subscribe]);
  perms.publish.deny = unique(deniedTo(identity.role));
  return perms;
}
