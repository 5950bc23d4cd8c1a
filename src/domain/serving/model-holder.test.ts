import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import { createModelHolder, type LoadedModel } from "./model-holder.js";

function fake(version: string, released: string[]): LoadedModel<{ name: string }> {
  return { version, model: { name: version }, release: async () => void released.push(version) };
}

describe("createModelHolder", () => {
  it("lets in-flight requests finish on the old model and frees it only afterwards", async () => {
    const released: string[] = [];
    const holder = createModelHolder<{ name: string }>({ name: "test" });
    await holder.swap(async () => fake("a", released));
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const slow = holder.use(async (m, v) => {
      await gate;
      return `${m.name}/${v}`;
    });
    const r = await holder.swap(async () => fake("b", released));
    expect(r).toMatchObject({ oldVersion: "a", newVersion: "b" });
    expect(holder.version).toBe("b");
    expect(await holder.use(async (_m, v) => v)).toBe("b");
    expect(released).toEqual([]);
    finish();
    expect(await slow).toBe("a/a");
    await holder.drained();
    expect(released).toEqual(["a"]);
  });

  it("refuses a model that fails validation, frees it, and keeps serving the old one", async () => {
    const released: string[] = [];
    const holder = createModelHolder<{ name: string }>({
      name: "test",
      validate: async (m) => {
        if (m.version === "bad") throw new AutodidactError("NaN logits", Code.DataLoss);
      },
    });
    await holder.swap(async () => fake("good", released));
    const err = await holder.swap(async () => fake("bad", released)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AutodidactError);
    expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
    expect((err as Error).message).toContain("NaN logits");
    expect(released).toEqual(["bad"]);
    expect(await holder.use(async (_m, v) => v)).toBe("good");
    const notFound = await holder.swap(async () => Promise.reject(new AutodidactError("no such file", Code.NotFound))).catch((e: unknown) => e);
    expect((notFound as AutodidactError).code).toBe(Code.NotFound);
    await holder.close();
    expect(released).toEqual(["bad", "good"]);
  });

  it("answers FailedPrecondition before the first model is loaded", async () => {
    const holder = createModelHolder<number>({ name: "empty" });
    const err = await holder.use(async () => 1).catch((e: unknown) => e);
    expect((err as AutodidactError).code).toBe(Code.FailedPrecondition);
  });
});
