import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";

/** One service process of a local mesh, as `autodidact up` last saw it. */
export interface MeshServiceEntry {
  name: string;
  kind: "generator" | "critic" | "consensus" | "trainer" | "monitor" | "conductor";
  /** `127.0.0.1:<port>` of its gRPC server. */
  address: string;
  pid: number;
  /** Port of its Prometheus `/metrics` (from its ready line); null when metrics are off. */
  metricsPort: number | null;
}

/** What `autodidact up` writes so that `status` and other commands find the running mesh. */
export interface MeshState {
  natsUrl: string;
  /** True when `up` started the nats-server itself (and will stop it). */
  ownsNats: boolean;
  /**
   * Pid of that nats-server. It runs in a process group of its own (a terminal's Ctrl-C reaches only `up`,
   * which stops it after the services drained), so whoever SIGKILLs `up`'s group must stop it by this pid.
   */
  natsPid?: number | null;
  supervisorPid: number;
  services: MeshServiceEntry[];
  updatedAt: string;
}

/** The default folder for a local mesh's state, logs and NATS store: `.autodidact/` in the working directory. */
export function defaultStateDir(cwd: string = process.cwd()): string {
  return join(cwd, ".autodidact");
}

/** Path of the mesh state file inside a state dir. */
export function meshStatePath(stateDir: string): string {
  return join(stateDir, "mesh.json");
}

/** Writes the state atomically (temp file + rename), so a reader never sees half a file. */
export async function writeMeshState(stateDir: string, state: MeshState): Promise<void> {
  const path = meshStatePath(stateDir);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + "\n");
  await rename(tmp, path);
}

/** Reads the state of a local mesh, with a message telling how to start one when there is none. */
export async function readMeshState(stateDir: string): Promise<MeshState> {
  const path = meshStatePath(stateDir);
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch (err) {
    throw new AutodidactError(
      `no local mesh found (${path} is missing): start one with \`autodidact up\`, or pass --address`,
      Code.NotFound,
      { cause: err },
    );
  }
  try {
    return JSON.parse(raw) as MeshState;
  } catch (err) {
    throw new AutodidactError(`${path} is not valid JSON`, Code.DataLoss, { cause: err });
  }
}
