import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, symlink, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { getTaskPack, loadTaskModules, taskIdentity } from "./index.js";

const EXAMPLES = fileURLToPath(new URL("../../../examples/tasks", import.meta.url));
const EXAMPLE = join(EXAMPLES, "number-words.ts");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "task-modules-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<AutodidactError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AutodidactError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("task modules", () => {
  it("loads the example module by path from a configured directory, registers its pack and records its identity", async () => {
    const [id] = await loadTaskModules({ modules: [EXAMPLE], dirs: [EXAMPLES] });
    const digest = createHash("sha256").update(await readFile(EXAMPLE)).digest("hex");
    expect(id).toMatchObject({ name: "number-words", version: "1.0.0", module: EXAMPLE, digest });
    expect(id?.dataDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(taskIdentity("number-words")).toEqual(id);
    const pack = getTaskPack("number-words");
    expect(pack.checkFormat("342=", "three hundred forty-two<eos>")).toEqual({ ok: true });
    expect(pack.checkFormat("42=", "three hundred<eos>").ok).toBe(false);
    expect(pack.rareSlices("113=")).toEqual(["teen"]);
    // Loading the same module again (another service start in one process) is a no-op.
    expect(await loadTaskModules({ modules: ["./number-words.ts"], dirs: [EXAMPLES], cwd: EXAMPLES })).toEqual([id]);
    expect(taskIdentity("addition")).toMatchObject({ name: "addition", module: "", digest: "builtin" });
  });

  it("refuses a module outside the configured directories, naming the file (also through a symlink)", async () => {
    const outside = join(dir, "evil.ts");
    await writeFile(outside, "export default { name: 'evil' };\n");
    const err = await refusal(loadTaskModules({ modules: [outside], dirs: [EXAMPLES] }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toContain(outside);
    expect(err.message).toMatch(/outside the configured task module directories/);
    const allowed = join(dir, "allowed");
    await mkdir(allowed);
    await symlink(outside, join(allowed, "link.ts"));
    const viaLink = await refusal(loadTaskModules({ modules: [join(allowed, "link.ts")], dirs: [allowed] }));
    expect(viaLink.code).toBe(Code.PermissionDenied);
    expect(viaLink.message).toContain(outside);
    const none = await refusal(loadTaskModules({ modules: [EXAMPLE], dirs: [] }));
    expect(none.code).toBe(Code.PermissionDenied);
    expect(none.message).toMatch(/no task module directory is configured/);
  });

  it("reports a broken module or a bad export as an error naming the file", async () => {
    const mods = join(dir, "mods");
    await mkdir(mods);
    await writeFile(join(mods, "throws.ts"), "throw new Error('boom at load');\n");
    await writeFile(join(mods, "not-a-pack.ts"), "export default { name: 'half', tokenizer: {} };\n");
    await writeFile(join(mods, "nothing.ts"), "export const x = 1;\n");
    const thrown = await refusal(loadTaskModules({ modules: [join(mods, "throws.ts")], dirs: [mods] }));
    expect(thrown.message).toMatch(new RegExp(`task module .*throws\\.ts: boom at load`));
    const half = await refusal(loadTaskModules({ modules: [join(mods, "not-a-pack.ts")], dirs: [mods] }));
    expect(half.code).toBe(Code.InvalidArgument);
    expect(half.message).toMatch(/not-a-pack\.ts: pack half is neither a task pack nor a pack definition: missing function\(s\) problemSpace/);
    const nothing = await refusal(loadTaskModules({ modules: [join(mods, "nothing.ts")], dirs: [mods] }));
    expect(nothing.message).toMatch(/nothing\.ts: exports no pack/);
    const missing = await refusal(loadTaskModules({ modules: [join(mods, "absent.ts")], dirs: [mods] }));
    expect(missing.code).toBe(Code.NotFound);
  });

  it("loads a data-set folder (pack.json) as a module without code", async () => {
    const pack = join(dir, "packs", "tiny-upper");
    await mkdir(pack, { recursive: true });
    const row = (w: string): string => JSON.stringify({ prompt: `${w}=`, answer: w.toUpperCase() });
    await writeFile(join(pack, "anchor.jsonl"), ["ab", "cd"].map(row).join("\n"));
    await writeFile(join(pack, "test.jsonl"), row("ef"));
    await writeFile(join(pack, "pool.jsonl"), JSON.stringify({ prompt: "gh=" }));
    await writeFile(join(pack, "pack.json"), JSON.stringify({ name: "tiny-upper", version: "2.0.0", splits: { anchor: "anchor.jsonl", test: "test.jsonl", pool: "pool.jsonl" } }));
    const [id] = await loadTaskModules({ modules: [pack], dirs: [join(dir, "packs")] });
    expect(id).toMatchObject({ name: "tiny-upper", version: "2.0.0" });
    expect(getTaskPack("tiny-upper").createPromptSampler({ seed: 1, difficulty: 3 }).next().prompt).toBe("gh=");
  });
});
