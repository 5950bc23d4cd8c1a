"""PyTorch peer of hf-bench.ts: the same Hugging Face folder, read by the reference
implementation of tests/reference/hf_reference.py (HF modelling semantics, PEFT LoRA).

Usage: torch_hf_bench.py DIR MODE:TARGETS   (MODE: train | gen-1 | gen-8; BENCH_SPEC env = JSON)
Prints one JSON line: {"value": tokens/s, "maxRssMb": peak resident MB}.
Training: LoRA r16 (alpha 32) on TARGETS, AdamW on the adapters only, base frozen, masked token
cross-entropy, best of the timed steps. Generation: greedy, batch B, a preallocated static KV
cache, under torch.inference_mode, best of the timed repeats.
"""

import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
import hf_reference as ref  # noqa: E402


class BenchLora(ref.Lora):
    """Fresh PEFT-initialised adapters (A uniform, B zero) on the target modules, trainable."""

    def __init__(self, cfg, targets, r, alpha):
        self.scale = alpha / r
        self.tensors = {}
        for name, shape in ref.param_shapes(cfg):
            module = name[: -len(".weight")]
            if not name.endswith(".weight") or len(shape) != 2 or not any(module == t or module.endswith("." + t) for t in targets):
                continue
            out_f, in_f = (shape[1], shape[0]) if cfg["model_type"] == "gpt2" else (shape[0], shape[1])
            bound = 1 / in_f**0.5
            self.tensors[f"base_model.model.{module}.lora_A.weight"] = (torch.rand(r, in_f) * 2 - 1).mul_(bound).requires_grad_(True)
            self.tensors[f"base_model.model.{module}.lora_B.weight"] = torch.zeros(out_f, r).requires_grad_(True)


def train(spec, folder, targets):
    cfg, model = ref.open_model(folder)
    lora = BenchLora(cfg, targets, 16, 32)
    opt = torch.optim.AdamW(lora.tensors.values(), lr=1e-4, weight_decay=0.0)
    B, T = spec["trainBatch"], spec["seq"]
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg["vocab_size"], (B, T), generator=g)
    targets_ids = torch.randint(0, cfg["vocab_size"], (B, T), generator=g)
    pos = torch.arange(T)[None].expand(B, T)
    mask = torch.ones(B, T, dtype=torch.long)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model.forward(ids, pos, mask, lora=lora)
        loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), targets_ids.reshape(-1))
        loss.backward()
        opt.step()

    step()
    best = float("inf")
    for _ in range(spec["trainSteps"]):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return B * T / best


def generate(spec, folder, batch):
    cfg, model = ref.open_model(folder)
    layers = cfg.get("num_hidden_layers") or cfg["n_layer"]
    heads = cfg.get("num_attention_heads") or cfg["n_head"]
    kv = cfg.get("num_key_value_heads") or heads
    hd = (cfg.get("hidden_size") or cfg["n_embd"]) // heads
    P, N = spec["prompt"], spec["newTokens"]
    g = torch.Generator().manual_seed(batch)
    prompts = torch.randint(0, cfg["vocab_size"], (batch, P), generator=g)

    def run():
        cache = ref.StaticCache(layers, batch, kv, P + N, hd, torch.float32)
        ids, pos = prompts, torch.arange(P)[None].expand(batch, P)
        for _ in range(N):
            mask = torch.ones(batch, cache.length + ids.shape[1], dtype=torch.long)
            logits = model.forward(ids, pos, mask, cache=cache)
            cache.advance()
            ids = logits[:, -1].argmax(-1, keepdim=True)
            pos = torch.full((batch, 1), cache.length)

    with torch.inference_mode():
        run()
        best = float("inf")
        for _ in range(spec["genRepeats"]):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
    return batch * N / best


def main():
    folder, mode = sys.argv[1], sys.argv[2]
    spec = json.loads(os.environ["BENCH_SPEC"])
    torch.set_num_threads(spec["threads"])
    kind, targets = mode.split(":")
    if kind == "train":
        value = train(spec, folder, targets.split(","))
    else:
        value = generate(spec, folder, int(kind.split("-")[1]))
    print(json.dumps({"value": value, "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
