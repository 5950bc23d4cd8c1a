import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** Debian's python3 (python3-torch lives in its dist-packages). */
export const PYTHON = "/usr/bin/python3";
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "hf_reference.py");

/** Why the PyTorch reference cannot run here (null when torch imports). */
export function torchMissing(): string | null {
  try {
    execFileSync(PYTHON, ["-c", "import torch"], { stdio: "ignore", timeout: 60_000 });
    return null;
  } catch {
    return `${PYTHON} cannot import torch: install Debian's python3-torch to run the Hugging Face parity tests`;
  }
}

/** Runs jobs through tests/reference/hf_reference.py in one Python process; one result per job. */
export async function reference<T = Record<string, unknown>>(jobs: readonly Record<string, unknown>[]): Promise<T[]> {
  const dir = await mkdtemp(join(tmpdir(), "hf-ref-"));
  try {
    await writeFile(join(dir, "job.json"), JSON.stringify(jobs));
    await promisify(execFile)(PYTHON, [SCRIPT, join(dir, "job.json"), join(dir, "out.json")], { timeout: 120_000, maxBuffer: 1 << 26 });
    return JSON.parse(await readFile(join(dir, "out.json"), "utf8")) as T[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
