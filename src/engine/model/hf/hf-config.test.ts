import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AutodidactError, Code } from "../../../platform/errors/index.js";
import { encodeSafetensors } from "../../checkpoint/safetensors.js";
import { importHfModel } from "../../checkpoint/hf-folder.js";
import { loadModel } from "../../checkpoint/model-folder.js";
import { createCharTokenizer } from "../../tokenizer/char-tokenizer.js";
import { loraSites, peftTargetModules } from "../lora-sites.js";
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

  it("GPT-2 LoRA sites: c_attn is one packed site; engine names alias onto GPT-2 modules", () => {
    const { config } = parseHfConfig(GPT2);
    const sites = loraSites(config, ["c_attn"]);
    expect(sites.map((s) => s.module)).toEqual(["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"]);
    expect(sites[0]).toMatchObject({ outs: [32, 32, 32], in: 32, a: "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight" });
    expect(loraSites(config, ["q_proj", "v_proj"]).map((s) => s.module)).toEqual(sites.map((s) => s.module));
    expect(loraSites(config, ["c_proj"]).map((s) => s.module)).toEqual(["transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj", "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"]);
    expect(() => loraSites(config, ["gate_proj"])).toThrow(/match no linear/);
    // What an adapter config records for family-blind targets: the names PEFT matches on GPT-2, once each.
    expect(peftTargetModules(config, ["q_proj", "v_proj", "o_proj"])).toEqual(["attn.c_attn", "attn.c_proj"]);
    expect(loraSites(config, peftTargetModules(config, ["q_proj", "v_proj"])).map((s) => s.module)).toEqual(sites.map((s) => s.module));
    expect(peftTargetModules(parseHfConfig(LLAMA).config, ["q_proj", "v_proj"])).toEqual(["q_proj", "v_proj"]);
  });

  it("loadModel reads a Hugging Face folder (what the trainer loads as a base), keeping the family", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hf-model-"));
    try {
      const { config } = parseHfConfig(LLAMA);
      await writeFile(join(dir, "config.json"), JSON.stringify(LLAMA));
      await writeFile(join(dir, "model.safetensors"), encodeSafetensors(toHfTensors("llama", config, initParameters(config, 3))));
      await writeFile(join(dir, "tokenizer.json"), JSON.stringify(createCharTokenizer({ alphabet: "abc" }).toJSON()));
      const m = await loadModel(dir);
      expect(m.config.family).toBe("llama");
      expect(m.metadata).toMatchObject({ source: "huggingface", model_type: "llama" });
      // What a trainer needs to write what it trains from it as a folder of the same family.
      expect(m.hf).toMatchObject({ dir, family: "llama", modelType: "llama", hfConfig: LLAMA, naming: { prefix: "" } });
      expect(m.params["model.layers.1.mlp.gate_proj.weight"]?.dims).toEqual([48, 32]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
