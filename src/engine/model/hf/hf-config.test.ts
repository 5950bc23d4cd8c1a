import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../../platform/errors/index.js";
import { encodeSafetensors } from "../../checkpoint/safetensors.js";
import { importHfModel } from "../../checkpoint/hf-folder.js";
import { initParameters } from "../params.js";
import { parseHfConfig } from "./config.js";
import { fromHfTensors, toHfTensors } from "./names.js";

const LLAMA = { model_type: "llama", vocab_size: 50, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48, max_position_embeddings: 64 };
const GPT2 = { model_type: "gpt2", vocab_size: 50, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 32 };

function refusal(json: Record<string, unknown>): AutodidactError {
  try {
    parseHfConfig(json);
  } catch (e) {
    return e as AutodidactError;
  }
  throw new Error("not refused");
}

describe("Hugging Face config.json", () => {
  it("reads the Llama family (GQA, SwiGLU, rotary theta, tie) and GPT-2 (Conv1D family, gelu_new, tied)", () => {
    const l = parseHfConfig({ ...LLAMA, rope_theta: 100000, tie_word_embeddings: true }).config;
    expect(l).toMatchObject({ numKvHeads: 2, mlp: "gated", activation: "silu", norm: "rmsnorm", positional: "rotary", ropeTheta: 100000, tieEmbeddings: true, bias: false });
    expect(parseHfConfig({ ...LLAMA, model_type: "qwen2" }).config.qkvBias).toBe(true);
    const g = parseHfConfig(GPT2).config;
    expect(g).toMatchObject({ positional: "learned", norm: "layernorm", activation: "gelu_tanh", bias: true, tieEmbeddings: true, intermediateSize: 128 });
  });

  it.each([
    [{ ...LLAMA, model_type: "mixtral" }, "model_type"],
    [{ ...LLAMA, rope_scaling: { rope_type: "yarn", factor: 4 } }, "rope_scaling"],
    [{ ...LLAMA, model_type: "mistral", sliding_window: 4096 }, "sliding_window"],
    [{ ...LLAMA, model_type: "qwen2", use_sliding_window: true }, "use_sliding_window"],
    [{ ...LLAMA, num_local_experts: 8 }, "num_local_experts"],
    [{ ...LLAMA, hidden_act: "gelu" }, "hidden_act"],
    [{ ...LLAMA, attention_bias: true }, "attention_bias"],
    [{ ...LLAMA, num_key_value_heads: 3 }, "numKvHeads"],
    [{ ...GPT2, scale_attn_by_inverse_layer_idx: true }, "scale_attn_by_inverse_layer_idx"],
    [{ ...GPT2, n_layer: "two" }, "n_layer"],
  ])("refuses %j naming %s", (json, field) => {
    const e = refusal(json);
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.message).toContain(field);
  });

  it("maps GPT-2 tensors (Conv1D, packed c_attn) to engine names and back unchanged", () => {
    const { config } = parseHfConfig(GPT2);
    const params = initParameters(config, 1);
    const hf = toHfTensors("gpt2", config, params);
    expect(hf["transformer.h.0.attn.c_attn.weight"]?.dims).toEqual([32, 96]);
    const back = fromHfTensors("gpt2", config, hf).params;
    for (const [name, t] of Object.entries(params)) expect(back[name]?.data, name).toEqual(t.data);
  });

  it("a corrupt or truncated safetensors file fails with DataLoss naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hf-bad-"));
    try {
      const { config } = parseHfConfig(LLAMA);
      await writeFile(join(dir, "config.json"), JSON.stringify(LLAMA));
      const bytes = encodeSafetensors(toHfTensors("llama", config, initParameters(config, 2)));
      await writeFile(join(dir, "model.safetensors"), bytes.subarray(0, bytes.length - 100));
      await expect(importHfModel(dir)).rejects.toMatchObject({ code: Code.DataLoss, message: expect.stringContaining("model.safetensors") });
      await writeFile(join(dir, "model.safetensors"), bytes);
      const m = await importHfModel(dir);
      expect(m.family).toBe("llama");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
