// Running the `autodidact` command as a user would, for the CLI tests (not a test file itself).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../bin/autodidact.mjs", import.meta.url));

/** What one run of the command gave back. */
export interface CliResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/**
 * Runs `autodidact <args>` in a child process and resolves with its exit code and output. `set` adds
 * environment variables; `unset` removes ones the test's own environment may carry (a developer's
 * `AUTODIDACT_CONDUCTOR`, say) so the command sees only what the test means it to.
 */
export function runCli(args: readonly string[], env: { set?: NodeJS.ProcessEnv; unset?: readonly string[] } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env.set };
    for (const name of env.unset ?? []) delete childEnv[name];
    const child = spawn(process.execPath, [cli, ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}
