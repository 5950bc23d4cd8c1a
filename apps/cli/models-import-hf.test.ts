import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Code } from "../../src/platform/errors/index.js";
import { modelsCommand } from "./models-commands.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("autodidact models import of a Hugging Face folder", () => {
  it("refuses an unsupported option naming the field, before contacting any conductor", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cli-hf-"));
    dirs.push(dir);
    const config = { model_type: "llama", vocab_size: 50, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 48, max_position_embeddings: 64, rope_scaling: { rope_type: "yarn", factor: 4 } };
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    await expect(modelsCommand(["import", dir, "--lineage", "main", "--conductor", "127.0.0.1:1"])).rejects.toMatchObject({ code: Code.InvalidArgument, message: expect.stringContaining("rope_scaling") });
  });
});
