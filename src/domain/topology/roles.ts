/**
 * The identities of the mesh. Each process connects to NATS as one of them; the server enforces
 * what it may publish and subscribe to (permissions.ts derives it from this module's
 * declarations), so a misconfigured or compromised process cannot write what its role does not
 * produce: only consensus decides, only the monitor promotes, only the conductor records runs.
 */
export const MESH_ROLES = ["generator", "critic", "consensus", "trainer", "monitor", "conductor", "admin"] as const;
/** One of {@link MESH_ROLES}. */
export type MeshRole = (typeof MESH_ROLES)[number];
/** A role a service process runs as (admin is the operator and `autodidact up`). */
export type ServiceRole = Exclude<MeshRole, "admin">;

/** One NATS user of the mesh: a role, plus the parameters of the durables it binds. */
export interface MeshIdentity {
  /** User name, unique in the mesh (`critic-a`); also the credentials file name. */
  name: string;
  role: MeshRole;
  /**
   * critic: the critic id whose durable (`Durables.critic.name(id)`) this user may consume with;
   * when absent, any durable on SAMPLES (`*`), for deployments where one credential serves several critics.
   */
  criticId?: string;
  /** trainer: its durable on DECISIONS (default `Durables.trainer.name`, the trainer's `--durable`). */
  trainerDurable?: string;
}
