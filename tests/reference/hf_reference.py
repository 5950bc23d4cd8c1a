"""Small PyTorch reference implementations of the Hugging Face GPT-2 and Llama-family
decoders (Llama, Qwen2, Mistral, SmolLM), written from the semantics of the Hugging Face
modelling code, plus PEFT-style LoRA. The engine's parity tests (tests/hf-parity.test.ts)
drive it: it builds tiny random checkpoints in the Hugging Face folder layout and computes
logits, greedy generations and LoRA gradients the engine must reproduce.

Usage: python3 hf_reference.py JOB.json OUT.json  (JOB = {"op": ..., ...}; see main()).
Only torch and the standard library: no transformers, no safetensors package.
"""

import json
import math
import os
import struct
import sys

import torch

# ---------------------------------------------------------------- safetensors

_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def write_safetensors(path, tensors, dtype="F32"):
    """Writes named tensors (sorted) in the safetensors layout."""
    torch_dtype, width = _DTYPES[dtype]
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch_dtype).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if width == 2 else t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """Reads every tensor of a safetensors file as float32."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        torch_dtype, _ = _DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        raw = bytearray(data[8 + n + b : 8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=torch_dtype).reshape(e["shape"]).float()
    return out


def load_weights(folder):
    """All tensors of a model folder (single file or sharded with an index)."""
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        index = json.load(f)
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        out.update(read_safetensors(os.path.join(folder, shard)))
    return out


# ---------------------------------------------------------------- LoRA (PEFT semantics)


class Lora:
    """A PEFT LoRA adapter: y += (alpha/r) * B(A(x)) on the modules whose names end with a target."""

    def __init__(self, folder, dtype):
        with open(os.path.join(folder, "adapter_config.json")) as f:
            self.config = json.load(f)
        self.scale = self.config["lora_alpha"] / self.config["r"]
        self.tensors = {k: v.to(dtype).requires_grad_(True) for k, v in read_safetensors(os.path.join(folder, "adapter_model.safetensors")).items()}

    def delta(self, module, x):
        a = self.tensors.get(f"base_model.model.{module}.lora_A.weight")
        if a is None:
            return None
        b = self.tensors[f"base_model.model.{module}.lora_B.weight"]
        return (x @ a.T) @ b.T * self.scale


def linear(w, module, x, bias=None, lora=None, conv1d=False):
    """nn.Linear (weight [out, in]) or GPT-2's Conv1D (weight [in, out]), plus a LoRA path."""
    y = x @ (w if conv1d else w.T)
    if bias is not None:
        y = y + bias
    d = lora.delta(module, x) if lora is not None else None
    return y if d is None else y + d


# ---------------------------------------------------------------- attention


def attention(q, k, v, mask_add):
    """softmax(q k^T / sqrt(hd) + mask) v on [B,H,T,hd] / [B,H,L,hd]."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(scores + mask_add, dim=-1) @ v


def additive_mask(attention_mask, q_len, past_len, dtype):
    """[B,1,q,past+q]: causal and key padding, as the HF 4-D mask (min value where hidden)."""
    total = past_len + q_len
    qpos = torch.arange(past_len, total)[:, None]
    kpos = torch.arange(total)[None, :]
    allowed = (kpos <= qpos)[None, None] & attention_mask[:, None, None, :total].bool()
    return torch.where(allowed, torch.zeros((), dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))


# ---------------------------------------------------------------- GPT-2


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Gpt2:
    """GPT2LMHeadModel semantics: learned positions, pre-LayerNorm blocks, Conv1D, gelu_new, tied head."""

    def __init__(self, cfg, w, prefix):
        self.cfg, self.w, self.p = cfg, w, prefix
        self.heads = cfg["n_head"]

    def t(self, name):
        return self.w[self.p + name]

    def layer_norm(self, x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.t(name + ".weight"), self.t(name + ".bias"), self.cfg.get("layer_norm_epsilon", 1e-5))

    def forward(self, ids, position_ids, attention_mask, cache=None, lora=None):
        h = self.t("wte.weight")[ids] + self.t("wpe.weight")[position_ids]
        past = 0 if cache is None else cache.length
        mask = additive_mask(attention_mask, ids.shape[1], past, h.dtype)
        B, T, D = h.shape
        hd = D // self.heads
        for i in range(self.cfg["n_layer"]):
            n = f"h.{i}."
            a = self.layer_norm(h, n + "ln_1")
            qkv = linear(self.t(n + "attn.c_attn.weight"), self.p + n + "attn.c_attn", a, self.t(n + "attn.c_attn.bias"), lora, conv1d=True)
            q, k, v = (x.reshape(B, T, self.heads, hd).transpose(1, 2) for x in qkv.split(D, dim=-1))
            if cache is not None:
                k, v = cache.update(i, k, v)
            o = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, D)
            h = h + linear(self.t(n + "attn.c_proj.weight"), self.p + n + "attn.c_proj", o, self.t(n + "attn.c_proj.bias"), lora, conv1d=True)
            m = self.layer_norm(h, n + "ln_2")
            up = gelu_new(linear(self.t(n + "mlp.c_fc.weight"), self.p + n + "mlp.c_fc", m, self.t(n + "mlp.c_fc.bias"), lora, conv1d=True))
            h = h + linear(self.t(n + "mlp.c_proj.weight"), self.p + n + "mlp.c_proj", up, self.t(n + "mlp.c_proj.bias"), lora, conv1d=True)
        h = self.layer_norm(h, "ln_f")
        head = self.w.get("lm_head.weight", self.t("wte.weight"))
        return h @ head.T


# ---------------------------------------------------------------- Llama family


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Llama:
    """LlamaForCausalLM semantics (Qwen2: q/k/v biases): RMSNorm, rotate-half RoPE, GQA, SwiGLU."""

    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.heads = cfg["num_attention_heads"]
        self.kv = cfg.get("num_key_value_heads") or self.heads
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.hd = cfg["hidden_size"] // self.heads
        self.theta = cfg.get("rope_theta", 10000.0)

    def rope(self, position_ids, dtype):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd))
        freqs = position_ids[:, :, None].float() * inv[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]

    def proj(self, i, name, x, lora):
        base = f"model.layers.{i}.{name}"
        return linear(self.w[base + ".weight"], base, x, self.w.get(base + ".bias"), lora)

    def forward(self, ids, position_ids, attention_mask, cache=None, lora=None):
        h = self.w["model.embed_tokens.weight"][ids]
        B, T, D = h.shape
        past = 0 if cache is None else cache.length
        mask = additive_mask(attention_mask, T, past, h.dtype)
        cos, sin = self.rope(position_ids, h.dtype)
        g = self.heads // self.kv
        for i in range(self.cfg["num_hidden_layers"]):
            a = rms_norm(h, self.w[f"model.layers.{i}.input_layernorm.weight"], self.eps)
            q = self.proj(i, "self_attn.q_proj", a, lora).reshape(B, T, self.heads, self.hd).transpose(1, 2)
            k = self.proj(i, "self_attn.k_proj", a, lora).reshape(B, T, self.kv, self.hd).transpose(1, 2)
            v = self.proj(i, "self_attn.v_proj", a, lora).reshape(B, T, self.kv, self.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                k, v = cache.update(i, k, v)
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
            o = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, D)
            h = h + self.proj(i, "self_attn.o_proj", o, lora)
            m = rms_norm(h, self.w[f"model.layers.{i}.post_attention_layernorm.weight"], self.eps)
            gate = torch.nn.functional.silu(self.proj(i, "mlp.gate_proj", m, lora))
            h = h + self.proj(i, "mlp.down_proj", gate * self.proj(i, "mlp.up_proj", m, lora), lora)
        h = rms_norm(h, self.w["model.norm.weight"], self.eps)
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        if lora is not None and "lm_head.weight" in self.w:
            return linear(head, "lm_head", h, None, lora)
        return h @ head.T


class StaticCache:
    """A preallocated KV cache [B, kv_heads, capacity, hd] per layer, filled in place."""

    def __init__(self, layers, batch, heads, capacity, hd, dtype):
        self.k = torch.zeros(layers, batch, heads, capacity, hd, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0
        self.pending = 0

    def update(self, i, k, v):
        n = k.shape[2]
        self.k[i, :, :, self.length : self.length + n] = k
        self.v[i, :, :, self.length : self.length + n] = v
        self.pending = n
        return self.k[i, :, :, : self.length + n], self.v[i, :, :, : self.length + n]

    def advance(self):
        self.length += self.pending


def open_model(folder, dtype=torch.float32):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    w = {k: v.to(dtype) for k, v in load_weights(folder).items()}
    if cfg["model_type"] == "gpt2":
        prefix = "transformer." if any(k.startswith("transformer.") for k in w) else ""
        return cfg, Gpt2(cfg, w, prefix)
    return cfg, Llama(cfg, w)


def positions(attention_mask):
    """position_ids for left-padded rows, as HF generate computes them."""
    p = attention_mask.long().cumsum(-1) - 1
    return p.masked_fill(attention_mask == 0, 1)


# ---------------------------------------------------------------- jobs


def make(job):
    """Builds a tiny random checkpoint of `config` in the HF layout (optionally sharded)."""
    torch.manual_seed(job.get("seed", 0))
    cfg = job["config"]
    folder = job["dir"]
    os.makedirs(folder, exist_ok=True)
    std = job.get("std", 0.2)
    w = {}
    for name, shape in param_shapes(cfg):
        if name.endswith(("norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")):
            w[name] = 1 + 0.1 * torch.randn(shape)
        else:
            w[name] = std * torch.randn(shape)
    shards = job.get("shards", 1)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), w, job.get("dtype", "F32"))
    else:
        names = sorted(w)
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(os.path.join(folder, fname), {n: w[n] for n in part}, job.get("dtype", "F32"))
            weight_map.update({n: fname for n in part})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return {"params": sum(t.numel() for t in w.values())}


def param_shapes(cfg):
    if cfg["model_type"] == "gpt2":
        D, L = cfg["n_embd"], cfg["n_layer"]
        M = cfg.get("n_inner") or 4 * D
        p = "transformer."
        out = [(p + "wte.weight", [cfg["vocab_size"], D]), (p + "wpe.weight", [cfg["n_positions"], D]), (p + "ln_f.weight", [D]), (p + "ln_f.bias", [D])]
        for i in range(L):
            n = f"{p}h.{i}."
            out += [(n + "ln_1.weight", [D]), (n + "ln_1.bias", [D]), (n + "ln_2.weight", [D]), (n + "ln_2.bias", [D])]
            out += [(n + "attn.c_attn.weight", [D, 3 * D]), (n + "attn.c_attn.bias", [3 * D]), (n + "attn.c_proj.weight", [D, D]), (n + "attn.c_proj.bias", [D])]
            out += [(n + "mlp.c_fc.weight", [D, M]), (n + "mlp.c_fc.bias", [M]), (n + "mlp.c_proj.weight", [M, D]), (n + "mlp.c_proj.bias", [D])]
        return out
    D, L, M = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    H = cfg["num_attention_heads"]
    KV = (cfg.get("num_key_value_heads") or H) * (D // H)
    out = [("model.embed_tokens.weight", [cfg["vocab_size"], D]), ("model.norm.weight", [D])]
    for i in range(L):
        n = f"model.layers.{i}."
        out += [(n + "input_layernorm.weight", [D]), (n + "post_attention_layernorm.weight", [D])]
        for m, o in (("q_proj", D), ("k_proj", KV), ("v_proj", KV), ("o_proj", D)):
            out.append((n + f"self_attn.{m}.weight", [o, D]))
            if cfg["model_type"] == "qwen2" and m != "o_proj":
                out.append((n + f"self_attn.{m}.bias", [o]))
        out += [(n + "mlp.gate_proj.weight", [M, D]), (n + "mlp.up_proj.weight", [M, D]), (n + "mlp.down_proj.weight", [D, M])]
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", [cfg["vocab_size"], D]))
    return out


def logits_job(job):
    """Logits [B,T,V] of a padded batch (attention_mask; position ids from it), optionally with an adapter."""
    _, model = open_model(job["dir"])
    ids = torch.tensor(job["input_ids"])
    mask = torch.tensor(job["attention_mask"])
    lora = Lora(job["adapter"], torch.float32) if job.get("adapter") else None
    with torch.inference_mode():
        out = model.forward(ids, positions(mask), mask, lora=lora)
    return {"logits": out.tolist()}


def greedy_job(job):
    """Greedy continuation of each prompt (unbatched) with a static KV cache under inference_mode."""
    cfg, model = open_model(job["dir"])
    layers = cfg.get("num_hidden_layers") or cfg["n_layer"]
    heads = cfg.get("num_key_value_heads") or cfg.get("num_attention_heads") or cfg["n_head"]
    hidden = cfg.get("hidden_size") or cfg["n_embd"]
    hd = hidden // (cfg.get("num_attention_heads") or cfg["n_head"])
    results = []
    with torch.inference_mode():
        for prompt in job["prompts"]:
            n = job["max_new_tokens"]
            cache = StaticCache(layers, 1, heads, len(prompt) + n, hd, torch.float32)
            ids = torch.tensor([prompt])
            out = []
            pos = torch.arange(len(prompt))[None]
            for _ in range(n):
                mask = torch.ones(1, cache.length + ids.shape[1], dtype=torch.long)
                logits = model.forward(ids, pos, mask, cache=cache)
                cache.advance()
                nxt = int(logits[0, -1].argmax())
                out.append(nxt)
                ids = torch.tensor([[nxt]])
                pos = torch.tensor([[cache.length]])
            results.append(out)
    return {"tokens": results}


def lora_grads_job(job):
    """Masked token cross-entropy (the engine's loss) and its gradient w.r.t. every adapter tensor."""
    dtype = torch.float64 if job.get("float64") else torch.float32
    _, model = open_model(job["dir"], dtype)
    lora = Lora(job["adapter"], dtype)
    ids = torch.tensor(job["input_ids"])
    B, T = ids.shape
    mask = torch.ones(B, T, dtype=torch.long)
    logits = model.forward(ids, torch.arange(T)[None].expand(B, T), mask, lora=lora)
    logp = torch.log_softmax(logits, dim=-1)
    targets = torch.tensor(job["targets"])
    loss_mask = torch.tensor(job["loss_mask"], dtype=dtype)
    nll = -logp.gather(-1, targets[..., None])[..., 0] * loss_mask
    loss = nll.sum() / loss_mask.sum().clamp(min=1)
    loss.backward()
    return {"loss": float(loss), "grads": {k: v.grad.flatten().tolist() for k, v in lora.tensors.items()}}


def make_adapter_job(job):
    """A PEFT adapter folder with random A and B (B nonzero) on `target_modules`, as made elsewhere."""
    torch.manual_seed(job.get("seed", 0))
    cfg = json.load(open(os.path.join(job["dir"], "config.json")))
    r = job["r"]
    targets = job["target_modules"]
    tensors = {}
    for name, shape in param_shapes(cfg):
        module = name[: -len(".weight")]
        if not name.endswith(".weight") or len(shape) != 2 or not any(module.endswith("." + t) or module == t for t in targets):
            continue
        conv1d = cfg["model_type"] == "gpt2"
        out_f, in_f = (shape[1], shape[0]) if conv1d else (shape[0], shape[1])
        tensors[f"base_model.model.{module}.lora_A.weight"] = 0.3 * torch.randn(r, in_f)
        tensors[f"base_model.model.{module}.lora_B.weight"] = 0.3 * torch.randn(out_f, r)
    os.makedirs(job["out"], exist_ok=True)
    write_safetensors(os.path.join(job["out"], "adapter_model.safetensors"), tensors)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": job["alpha"], "lora_dropout": 0.0, "target_modules": targets,
              "bias": "none", "fan_in_fan_out": cfg["model_type"] == "gpt2", "base_model_name_or_path": job["dir"], "inference_mode": True}
    with open(os.path.join(job["out"], "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return {"tensors": sorted(tensors)}


JOBS = {"make": make, "logits": logits_job, "greedy": greedy_job, "lora_grads": lora_grads_job, "make_adapter": make_adapter_job}


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    results = [JOBS[j["op"]](j) for j in (jobs if isinstance(jobs, list) else [jobs])]
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
