// Tiny random Hugging Face checkpoints: the parity tests build them with tests/reference/hf_reference.py,
// the mesh test with saveTinyHfCheckpoint (no PyTorch needed).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { initParameters, parseHfConfig, saveHfModel } from "../../src/engine/index.js";

/** Tiny configs of every supported family and option: GQA, sharded, bf16, Qwen2 biases, tied/untied. */
export const TINY: Record<string, { config: Record<string, unknown>; shards?: number; dtype?: string }> = {
  gpt2: { config: { model_type: "gpt2", vocab_size: 50, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 32, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" } },
  llama: {
    config: { model_type: "llama", vocab_size: 50, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: "silu", tie_word_embeddings: false },
    shards: 2,
  },
  qwen2: {
    config: { model_type: "qwen2", vocab_size: 50, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, intermediate_size: 40, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1000000, hidden_act: "silu", tie_word_embeddings: true, use_sliding_window: false, sliding_window: 4096 },
  },
  smollm: {
    config: { model_type: "llama", vocab_size: 50, hidden_size: 36, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, intermediate_size: 64, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 100000, hidden_act: "silu", tie_word_embeddings: true },
    dtype: "BF16",
  },
};

/**
 * Writes a tiny random checkpoint of one {@link TINY} family in the Hugging Face layout without
 * PyTorch (config.json, model.safetensors with the family's tensor names, tokenizer.json and
 * tokenizer_config.json), its vocabulary sized to `tokenizerJson`: what a user brings to
 * `autodidact models import` for the mesh tests.
 */
export async function saveTinyHfCheckpoint(
  dir: string,
  o: { name: keyof typeof TINY; seed: number; vocabSize: number; tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> },
): Promise<void> {
  const architectures: Record<string, string> = { gpt2: "GPT2LMHeadModel", qwen2: "Qwen2ForCausalLM" };
  const hfConfig = { architectures: [architectures[o.name] ?? "LlamaForCausalLM"], ...TINY[o.name]!.config, vocab_size: o.vocabSize, torch_dtype: "float32" };
  const { family, config } = parseHfConfig(hfConfig);
  await saveHfModel(dir, { family, config, params: initParameters(config, o.seed), hfConfig });
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(o.tokenizerJson));
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(o.tokenizerConfig));
}
