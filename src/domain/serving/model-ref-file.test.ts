import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { readModelRefFile, watchModelRefFile } from "./model-ref-file.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "model-ref-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("readModelRefFile", () => {
  it("returns the first line that is neither empty nor a comment, trimmed", async () => {
    const f = join(dir, "model");
    await writeFile(f, "# the likelihood critic's model\n\n   main@12  \nother@1\n");
    expect(await readModelRefFile(f)).toBe("main@12");
  });

  it("refuses a missing file and a file with no reference as INVALID_ARGUMENT", async () => {
    await expect(readModelRefFile(join(dir, "nope"))).rejects.toMatchObject({ code: Code.InvalidArgument });
    const f = join(dir, "empty");
    await writeFile(f, "# nothing\n\n");
    const err = await readModelRefFile(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.InvalidArgument);
  });
});

describe("watchModelRefFile", () => {
  it("calls onChange once per new reference, never for the initial one, one call at a time", async () => {
    const f = join(dir, "model");
    await writeFile(f, "main@1\n");
    const calls: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const stop = watchModelRefFile({
      path: f,
      initial: "main@1",
      intervalMs: 10,
      onChange: async (ref) => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        calls.push(ref);
        await new Promise((r) => setTimeout(r, 50));
        concurrent--;
      },
    });
    try {
      await new Promise((r) => setTimeout(r, 60));
      expect(calls).toEqual([]);
      await writeFile(f, "main@2\n");
      await until(() => calls.length === 1);
      await writeFile(f, "/models/other\n");
      await until(() => calls.length === 2);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await stop();
    }
    expect(calls).toEqual(["main@2", "/models/other"]);
    expect(maxConcurrent).toBe(1);
  });

  it("does not retry a failed swap until the reference changes, and survives the file vanishing", async () => {
    const f = join(dir, "model");
    await writeFile(f, "main@1\n");
    const calls: string[] = [];
    const stop = watchModelRefFile({
      path: f,
      initial: "main@1",
      intervalMs: 10,
      onChange: async (ref) => {
        calls.push(ref);
        if (ref === "bad@9") throw new AutodidactError("cannot load", Code.FailedPrecondition);
      },
    });
    try {
      await writeFile(f, "bad@9\n");
      await until(() => calls.length === 1);
      await new Promise((r) => setTimeout(r, 100));
      expect(calls).toEqual(["bad@9"]);
      await rm(f);
      await new Promise((r) => setTimeout(r, 50));
      await writeFile(f, "main@3\n");
      await until(() => calls.length === 2);
    } finally {
      await stop();
    }
    expect(calls).toEqual(["bad@9", "main@3"]);
  });

  it("stops polling after stop()", async () => {
    const f = join(dir, "model");
    await writeFile(f, "main@1\n");
    const calls: string[] = [];
    const stop = watchModelRefFile({ path: f, initial: "main@1", intervalMs: 10, onChange: async (ref) => void calls.push(ref) });
    await stop();
    await writeFile(f, "main@2\n");
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toEqual([]);
  });
});
