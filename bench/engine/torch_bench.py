"""PyTorch side of the engine benchmark: the same decoder-only transformer as src/engine/model
(pre-norm LayerNorm, no positional encoding, erf GELU MLP, untied lm_head, weights [out, in] with
Hugging Face names), timed the way a PyTorch user would run it, plus a logits parity check.

Usage: python3 torch_bench.py <work dir> [train|infer]   (reads spec.json, weights.safetensors,
parity_ids.bin; writes nothing; prints one JSON object on stdout). `train` times training only,
`infer` the parity check and generation only; both by default.
"""
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", meta["dtype"]
        a, b = meta["data_offsets"]
        t = torch.frombuffer(bytearray(raw[base + a : base + b]), dtype=torch.float32)
        out[name] = t.reshape(meta["shape"]).clone()
    return out


class Decoder(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        D, M, V = c["hiddenSize"], c["intermediateSize"], c["vocabSize"]
        self.H = c["numHeads"]
        self.hd = D // self.H
        self.embed = torch.nn.Embedding(V, D)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["numLayers"]):
            layer = torch.nn.Module()
            layer.ln1 = torch.nn.LayerNorm(D, eps=c["normEps"])
            layer.q = torch.nn.Linear(D, D, bias=False)
            layer.k = torch.nn.Linear(D, D, bias=False)
            layer.v = torch.nn.Linear(D, D, bias=False)
            layer.o = torch.nn.Linear(D, D, bias=False)
            layer.ln2 = torch.nn.LayerNorm(D, eps=c["normEps"])
            layer.up = torch.nn.Linear(D, M, bias=False)
            layer.down = torch.nn.Linear(M, D, bias=False)
            self.layers.append(layer)
        self.norm = torch.nn.LayerNorm(D, eps=c["normEps"])
        self.head = torch.nn.Linear(D, V, bias=False)

    def load_hf(self, w):
        with torch.no_grad():
            self.embed.weight.copy_(w["model.embed_tokens.weight"])
            for i, l in enumerate(self.layers):
                p = f"model.layers.{i}."
                l.ln1.weight.copy_(w[p + "input_layernorm.weight"])
                l.ln1.bias.copy_(w[p + "input_layernorm.bias"])
                for name, mod in (("q_proj", l.q), ("k_proj", l.k), ("v_proj", l.v), ("o_proj", l.o)):
                    mod.weight.copy_(w[p + f"self_attn.{name}.weight"])
                l.ln2.weight.copy_(w[p + "post_attention_layernorm.weight"])
                l.ln2.bias.copy_(w[p + "post_attention_layernorm.bias"])
                l.up.weight.copy_(w[p + "mlp.up_proj.weight"])
                l.down.weight.copy_(w[p + "mlp.down_proj.weight"])
            self.norm.weight.copy_(w["model.norm.weight"])
            self.norm.bias.copy_(w["model.norm.bias"])
            self.head.weight.copy_(w["lm_head.weight"])

    def heads(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.H, self.hd).transpose(1, 2)

    def forward(self, ids, cache=None):
        """ids [B,T]; cache: list of (k, v) per layer or None. Returns logits, new cache."""
        x = self.embed(ids)
        B, T, D = x.shape
        new_cache = []
        for i, l in enumerate(self.layers):
            a = l.ln1(x)
            q, k, v = self.heads(l.q(a)), self.heads(l.k(a)), self.heads(l.v(a))
            if cache is not None:
                pk, pv = cache[i]
                k = torch.cat([pk, k], dim=2)
                v = torch.cat([pv, v], dim=2)
            new_cache.append((k, v))
            L = k.shape[2]
            scores = (q * (1.0 / math.sqrt(self.hd))) @ k.transpose(-1, -2)
            if T > 1:
                mask = torch.full((T, L), 0.0)
                mask[:, L - T :] = torch.triu(torch.full((T, T), -1e9), diagonal=1)
                scores = scores + mask
            att = torch.softmax(scores, dim=-1) @ v
            x = x + l.o(att.transpose(1, 2).reshape(B, T, D))
            m = l.ln2(x)
            x = x + l.down(F.gelu(l.up(m)))
        return self.head(self.norm(x)), new_cache


def timed(fn, repeats):
    """Seconds per call: the fastest of `repeats` timed calls (as the engine side measures)."""
    fn()  # warm-up
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    work = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "all"
    spec = json.load(open(f"{work}/spec.json"))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = Decoder(spec["config"])
    model.load_hf(read_safetensors(f"{work}/weights.safetensors"))
    result = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    g = torch.Generator().manual_seed(1)
    if mode in ("all", "infer"):
        parity(spec, work, model, result)
    if mode in ("all", "train"):
        train(spec, model, g, result)
    if mode in ("all", "infer"):
        generation(spec, model, g, result)
    print(json.dumps(result))


def parity(spec, work, model, result):
    """Max |logit difference| against the engine's logits for the same weights and ids."""
    V = spec["config"]["vocabSize"]
    pids = spec["parityShape"]
    ids = torch.frombuffer(bytearray(open(f"{work}/parity_ids.bin", "rb").read()), dtype=torch.int64).reshape(pids)
    engine = torch.frombuffer(bytearray(open(f"{work}/parity_logits.bin", "rb").read()), dtype=torch.float32).reshape(pids + [V])
    with torch.no_grad():
        logits, _ = model(ids)
    result["parityMaxAbsDiff"] = float((logits - engine).abs().max())


def train(spec, model, g, result):
    """Full fine-tune, AdamW, cross-entropy over all positions."""
    B, T, V = spec["batch"], spec["seq"], spec["config"]["vocabSize"]
    x = torch.randint(0, V, (B, T), generator=g)
    y = torch.randint(0, V, (B, T), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def train_step():
        opt.zero_grad(set_to_none=True)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    c0 = time.process_time()
    step = timed(train_step, spec["trainSteps"])
    result["trainCpuSecPerStep"] = (time.process_time() - c0) / (spec["trainSteps"] + 2)
    result["trainStepMs"] = step * 1000
    result["trainTokensPerSec"] = B * T / step


def generation(spec, model, g, result):
    """Greedy decoding with a KV cache at each batch size of the spec."""
    V = spec["config"]["vocabSize"]

    def generate(batch):
        prompt = torch.randint(0, V, (batch, spec["promptLen"]), generator=g)
        with torch.inference_mode():
            logits, cache = model(prompt)
            tok = logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(spec["newTokens"] - 1):
                logits, cache = model(tok, cache)
                tok = logits[:, -1].argmax(-1, keepdim=True)

    for batch in spec["genBatches"]:
        t = timed(lambda: generate(batch), spec["genRepeats"])
        result[f"genTokensPerSec_b{batch}"] = batch * spec["newTokens"] / t


if __name__ == "__main__":
    main()
