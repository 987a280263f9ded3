#!/usr/bin/env python3
"""Times KV-cached PAR decoding of the same model in PyTorch, for docs/benchmarks.md.

Our own PyTorch implementation, written from docs/spec.md (the PAR order §1, sequence layout and
decode steps §2–§3, 2D RoPE with zero rows for class and transition slots §2.3, the LlamaGen
block §4.1), like the golden-fixture scripts in tests/golden/; no upstream code is used. It
mirrors what `bench_latency` times: random weights, classifier-free guidance (the batch doubled
with the null class), one categorical draw per token on the host side of the loop, seconds per
image at batch 1 (and any other batch), median of --repeats after one warm-up.

The model is the decode path of a LlamaGen / PAR GPT: a preallocated KV cache per layer, each step
writing its keys and values and attending to the filled prefix with
`F.scaled_dot_product_attention` (a decode step needs no mask), in f32 on the CPU, under
`torch.inference_mode()`.

Usage (PyPI torch in a scratch venv; never a dependency of the project):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    /tmp/torchvenv/bin/python scripts/bench_pytorch_decode.py --preset gpt-b --grid 16 \\
        --parallel 1,4,16 --threads 2 --repeats 3 --out runs/bench_pytorch/latency.json
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # name: (layers, heads, width, vocab, classes, multiple_of)
    "gpt-tiny": (2, 2, 32, 64, 10, 32),
    "gpt-small": (4, 4, 128, 1024, 10, 64),
    "gpt-b": (12, 12, 768, 16384, 1000, 256),
    "gpt-l": (24, 16, 1024, 16384, 1000, 256),
}


def find_multiple(n, k):
    return n if n % k == 0 else n + k - (n % k)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.attention_norm = RMSNorm(dim)
        self.ffn_norm = RMSNorm(dim)

    def forward(self, x, cos, sin, cache_k, cache_v, start):
        """x [B, S, D]; cos/sin [S, d_h/2]; cache_* [B, H, max, d_h]; slots start .. start+S."""
        b, s, d = x.shape
        q, k, v = self.wqkv(self.attention_norm(x)).split([d, d, d], dim=-1)
        shape = (b, s, self.heads, self.head_dim)
        q, k = rope(q.reshape(shape), cos, sin), rope(k.reshape(shape), cos, sin)
        end = start + s
        cache_k[:, :, start:end] = k.transpose(1, 2)
        cache_v[:, :, start:end] = v.reshape(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), cache_k[:, :, :end], cache_v[:, :, :end]
        )
        x = x + self.wo(out.transpose(1, 2).reshape(b, s, d))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


def rope(x, cos, sin):
    """Rotates adjacent channel pairs of x [B, S, H, d_h] by the slots' angles."""
    b, s, h, d = x.shape
    xp = x.reshape(b, s, h, d // 2, 2)
    x0, x1 = xp[..., 0], xp[..., 1]
    c, sn = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([x0 * c - x1 * sn, x1 * c + x0 * sn], dim=-1).reshape(b, s, h, d)


class ParGPT(nn.Module):
    def __init__(self, preset, grid, parallel):
        super().__init__()
        layers, heads, dim, vocab, classes, multiple = PRESETS[preset]
        hidden = find_multiple(int(2 * 4 * dim / 3), multiple)
        self.grid, self.n, self.dim, self.heads = grid, parallel, dim, heads
        self.vocab, self.num_classes = vocab, classes
        self.cls = nn.Embedding(classes + 1, dim)
        self.tok = nn.Embedding(vocab, dim)
        self.spe = nn.Embedding(max(parallel - 1, 1), dim)
        self.layers = nn.ModuleList(Block(dim, heads, hidden) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
        self.cos, self.sin = slot_rope_table(grid, parallel, dim // heads)


def par_to_raster(p, L, n):
    """Raster index of the token at PAR position p (spec §1.1)."""
    M = int(round(math.sqrt(n)))
    b = L // M
    c, a = p % M, (p // M) % M
    j, i = (p // n) % b, p // (n * b)
    return (a * b + i) * L + (c * b + j)


def slot_rope_table(L, n, head_dim, base=10000.0):
    """cos/sin [N + n, d_h/2] per decode slot: class and transition slots 0, token slots the
    (row, col) of their cell; pairs 0 … d_h/4−1 by row, the rest by column (spec §2.3)."""
    half, quarter = head_dim // 2, head_dim // 4
    theta = base ** (-4.0 * torch.arange(quarter, dtype=torch.float64) / head_dim)
    N = L * L
    cos = torch.zeros(N + n, half, dtype=torch.float64)
    sin = torch.zeros(N + n, half, dtype=torch.float64)
    for slot in range(N + n):
        if slot == 0 or n < slot <= 2 * n - 1:
            continue  # class slot, transition slots
        p = slot - 1 if slot <= n else slot - n
        r = par_to_raster(p, L, n)
        ang = torch.cat([(r // L) * theta, (r % L) * theta])
        cos[slot], sin[slot] = ang.cos(), ang.sin()
    return cos.float(), sin.float()


@torch.inference_mode()
def generate(model, classes, cfg_scale, gen):
    """PAR decode (spec §3.2): prefill, n−1 sequential steps, the transition step, parallel
    groups; guidance doubles the batch with the null class. Returns the step count."""
    L, n = model.grid, model.n
    N = L * L
    B = len(classes)
    rows = 2 * B if cfg_scale > 1 else B
    cls = torch.tensor(classes + [model.num_classes] * (rows - B))
    hd = model.dim // model.heads
    caches = [
        (torch.empty(rows, model.heads, N, hd), torch.empty(rows, model.heads, N, hd))
        for _ in model.layers
    ]
    tokens = torch.zeros(B, N, dtype=torch.long)  # PAR order
    steps = 0

    def step(x, start, targets):
        nonlocal steps
        steps += 1
        s = x.shape[1]
        cos, sin = model.cos[start : start + s], model.sin[start : start + s]
        for layer, (ck, cv) in zip(model.layers, caches):
            x = layer(x, cos, sin, ck, cv, start)
        logits = model.output(model.norm(x))  # [rows, s, V]
        if rows > B:
            c, u = logits[:B], logits[B:]
            logits = u + cfg_scale * (c - u)
        probs = torch.softmax(logits.reshape(-1, model.vocab), dim=-1)
        drawn = torch.multinomial(probs, 1, generator=gen).reshape(B, s)
        tokens[:, targets] = drawn

    def embed(ids):
        t = model.tok(ids)
        return torch.cat([t, t], 0) if rows > B else t

    step(model.cls(cls)[:, None, :], 0, slice(0, 1))
    for k in range(1, n):
        step(embed(tokens[:, k - 1 : k]), k, slice(k, k + 1))
    if n == 1:
        for k in range(1, N):
            step(embed(tokens[:, k - 1 : k]), k, slice(k, k + 1))
    else:
        spe = model.spe.weight[None].expand(rows, -1, -1)
        step(torch.cat([embed(tokens[:, n - 1 : n]), spe], 1), n, slice(n, 2 * n))
        for g in range(1, N // n - 1):
            start = g * n + n
            step(embed(tokens[:, g * n : (g + 1) * n]), start, slice(start, start + n))
    assert steps == n + (N - n) // n
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="gpt-b", choices=sorted(PRESETS))
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--parallel", default="1,4,16")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--cfg-scale", type=float, default=1.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n in map(int, args.parallel.split(",")):
        model = ParGPT(args.preset, args.grid, n).eval()
        for batch in map(int, args.batch.split(",")):
            classes = [i % model.num_classes for i in range(batch)]
            generate(model, classes, args.cfg_scale, gen)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                steps = generate(model, classes, args.cfg_scale, gen)
                times.append(time.perf_counter() - t0)
            seconds = statistics.median(times)
            row = {
                "backend": "pytorch",
                "torch": torch.__version__,
                "threads": args.threads,
                "parallel": n,
                "grid": args.grid,
                "batch": batch,
                "steps": steps,
                "seconds_per_image": seconds / batch,
                "ms_per_step": seconds * 1e3 / steps,
                "images_per_second": batch / seconds,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        import os

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
