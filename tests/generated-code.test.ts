import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

// Stale check: generated code is checked in, so a .proto edit without `npm run generate` must fail CI.
const root = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe("generated code", () => {
  let out: string | undefined;
  afterAll(async () => {
    if (out !== undefined) await rm(out, { recursive: true, force: true });
  });

  it("src/gen matches what buf generates from proto/ (run `npm run generate` if this fails)", async () => {
    out = await mkdtemp(join(tmpdir(), "autodidact-gen-"));
    await run(join(root, "node_modules/.bin/buf"), ["generate", "--output", out], { cwd: root });
    const fresh = join(out, "src/gen");
    const checkedIn = join(root, "src/gen");
    const freshFiles = await listFiles(fresh);
    expect(freshFiles.length).toBeGreaterThan(0);
    expect(await listFiles(checkedIn)).toEqual(freshFiles);
    const stale: string[] = [];
    for (const file of freshFiles) {
      const [a, b] = await Promise.all([readFile(join(fresh, file), "utf8"), readFile(join(checkedIn, file), "utf8")]);
      if (a !== b) stale.push(file);
    }
    expect(stale, `stale generated files: ${stale.join(", ")}`).toEqual([]);
  });
});
