#!/usr/bin/python3
"""Golden fixtures for the PAR / LlamaGen class-conditional GPT (tiny random model).

What it does
    For three configurations (n1: L=4 n=1, raster LlamaGen order; n4: L=4 n=4; n16: L=8 n=16) it builds a
    tiny GPT as plain torch modules whose state_dict keys are exactly docs/spec.md §4.5, initialises it
    randomly (seeded), and writes to tests/fixtures/transformer/:
      * the checkpoint in three wrapper styles (§4.6): n1 bare state_dict, n4 {"model","steps","args"},
        n16 {"state_dict"};
      * fixed classes / raster codes;
      * teacher-forced logits (§2.1 layout, §2.2 group mask, §2.3 2D RoPE with zero rows, §4.1 blocks);
      * the logits of an independently written KV-cached step decode (§3.2), teacher-forced with the same
        tokens, concatenated over steps -- the script asserts they match the teacher-forced logits;
      * the config json, and for n4 the full RoPE cos/sin table.
    See tests/fixtures/transformer/MANIFEST.md (written by this script) for the file list.

    Written from docs/spec.md (sections 1, 2, 3.2, 4.1, 4.3, 4.5, 4.6) and docs/ordering.md only;
    no upstream LlamaGen / PAR code was consulted or copied.

    The teacher-forced path and the step-decode path share only the nn.Module weights and the per-layer
    projections/RMSNorm/FFN. They compute independently: the code permutation (tensor reshape/permute vs
    closed-form per-position formula), the RoPE rows (permuted grid table vs per-slot cell formula), the
    attention mask (closed-form group mask vs. no mask over the KV cache) and the sequence layout.

Generated with torch 1.13.0a0 (Debian python3-torch), numpy 1.24.2, float32 on CPU.

Rerun (from the repository root):
    /usr/bin/python3 tests/golden/gen_transformer_fixtures.py
"""

import argparse
import json
import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0
torch.manual_seed(SEED)
np.random.seed(SEED)
torch.set_num_threads(1)  # deterministic reductions, and the machine is shared

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.normpath(os.path.join(HERE, "..", "fixtures", "transformer"))

# ---------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------
VOCAB = 64
NUM_CLASSES = 10  # class table has NUM_CLASSES + 1 rows, the last one (id 10) is the null class
DIM = 32
N_LAYER = 2
N_HEAD = 2
MULTIPLE_OF = 32
ROPE_BASE = 10000.0
NORM_EPS = 1e-5
BATCH = 2
CLASSES = [3, NUM_CLASSES]  # second sample uses the null class

# init stds (see MANIFEST.md); docs/spec.md §4.3 uses 0.02 everywhere and a zero output head, which for this
# tiny model gives near-uniform attention and logits of size ~0.1 -- too weak to discriminate the
# mask / RoPE details, so larger stds are used.
EMB_STD = 0.5      # tok_embeddings, cls_embedding, spe_tok_embeddings
LINEAR_STD = 0.2   # wqkv, wo, w1, w3, w2, output
NORM_NOISE = 0.1   # RMSNorm weights = 1 + NORM_NOISE * N(0, 1)

CONFIGS = [
    # name, grid L, parallel n
    ("n1", 4, 1),
    ("n4", 4, 4),
    ("n16", 8, 16),
]

TOL = 1e-5


def find_multiple(n, k):
    return n if n % k == 0 else n + k - (n % k)


FFN_HIDDEN = find_multiple(int(2 * 4 * DIM / 3), MULTIPLE_OF)
HEAD_DIM = DIM // N_HEAD
assert FFN_HIDDEN == 96 and HEAD_DIM == 16


# ---------------------------------------------------------------------------------------------------------
# modules (registration order = docs/spec.md §4.5 key order)
# ---------------------------------------------------------------------------------------------------------
class ClassEmbedder(nn.Module):
    def __init__(self, num_classes, dim):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)


class SpecialEmbeddings(nn.Module):
    def __init__(self, count, dim):
        super().__init__()
        self.special_embeddings = nn.Embedding(count, dim)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, dim, n_head):
        super().__init__()
        self.n_head = n_head
        self.head_dim = dim // n_head
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def qkv(self, x):
        """x [B, S, D] -> q, k, v each [B, S, H, d_h] (head h = channels h*d_h .. (h+1)*d_h-1)."""
        b, s, d = x.shape
        q, k, v = self.wqkv(x).split([d, d, d], dim=-1)
        shape = (b, s, self.n_head, self.head_dim)
        return q.reshape(shape), k.reshape(shape), v.reshape(shape)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, dim, n_head, hidden, eps):
        super().__init__()
        self.attention = Attention(dim, n_head)
        self.feed_forward = FeedForward(dim, hidden)
        self.attention_norm = RMSNorm(dim, eps)
        self.ffn_norm = RMSNorm(dim, eps)


class GPT(nn.Module):
    def __init__(self, parallel):
        super().__init__()
        self.parallel = parallel
        self.cls_embedding = ClassEmbedder(NUM_CLASSES, DIM)
        self.tok_embeddings = nn.Embedding(VOCAB, DIM)
        if parallel > 1:
            self.spe_tok_embeddings = SpecialEmbeddings(parallel - 1, DIM)
        self.layers = nn.ModuleList(
            [Block(DIM, N_HEAD, FFN_HIDDEN, NORM_EPS) for _ in range(N_LAYER)]
        )
        self.norm = RMSNorm(DIM, NORM_EPS)
        self.output = nn.Linear(DIM, VOCAB, bias=False)

    def spe_table(self):
        if self.parallel > 1:
            return self.spe_tok_embeddings.special_embeddings.weight
        return self.tok_embeddings.weight.new_zeros(0, DIM)


def expected_keys(n):
    keys = ["cls_embedding.embedding_table.weight", "tok_embeddings.weight"]
    if n > 1:
        keys.append("spe_tok_embeddings.special_embeddings.weight")
    for i in range(N_LAYER):
        keys += [
            f"layers.{i}.attention.wqkv.weight",
            f"layers.{i}.attention.wo.weight",
            f"layers.{i}.feed_forward.w1.weight",
            f"layers.{i}.feed_forward.w3.weight",
            f"layers.{i}.feed_forward.w2.weight",
            f"layers.{i}.attention_norm.weight",
            f"layers.{i}.ffn_norm.weight",
        ]
    keys += ["norm.weight", "output.weight"]
    return keys


def init_weights(model, gen):
    """In registration order: embeddings ~ N(0, EMB_STD), linears ~ N(0, LINEAR_STD), norms 1 + 0.1 N(0,1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + NORM_NOISE * noise)
            elif name in (
                "cls_embedding.embedding_table.weight",
                "tok_embeddings.weight",
                "spe_tok_embeddings.special_embeddings.weight",
            ):
                p.copy_(EMB_STD * noise)
            else:
                p.copy_(LINEAR_STD * noise)


# ---------------------------------------------------------------------------------------------------------
# shared layer math
# ---------------------------------------------------------------------------------------------------------
def apply_rope(x, cos, sin):
    """x [B, S, H, d_h]; cos/sin [S, d_h/2]; adjacent pairs (x[2k], x[2k+1])."""
    b, s, h, d = x.shape
    xp = x.reshape(b, s, h, d // 2, 2)
    x0, x1 = xp[..., 0], xp[..., 1]
    c = cos[None, :, None, :]
    sn = sin[None, :, None, :]
    out0 = x0 * c - x1 * sn
    out1 = x1 * c + x0 * sn
    return torch.stack([out0, out1], dim=-1).reshape(b, s, h, d)


def attend(q, k, v, allowed):
    """q [B, Sq, H, d], k/v [B, Sk, H, d], allowed bool [Sq, Sk] or None (all visible)."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, S, d]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if allowed is not None:
        scores = scores.masked_fill(~allowed[None, None], float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v  # [B, H, Sq, d]
    b, h, s, d = out.shape
    return out.transpose(1, 2).reshape(b, s, h * d)


def rope_angle_freqs():
    """theta_m = base^(-4m/d_h), m = 0 .. d_h/4 - 1 (float64)."""
    m = np.arange(HEAD_DIM // 4, dtype=np.float64)
    return ROPE_BASE ** (-4.0 * m / HEAD_DIM)


def cell_cos_sin(row, col):
    """(cos, sin) float32 [d_h/2] of one grid cell: row pairs first, then col pairs."""
    th = rope_angle_freqs()
    ang = np.concatenate([row * th, col * th])
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# path A: teacher-forced forward (tensor reshape/permute, closed-form group mask)
# ---------------------------------------------------------------------------------------------------------
def par_permute_tensor(x, L, n):
    """x [B, N, ...] in raster order -> PAR order (spec §1.1 tensor form)."""
    M = int(round(math.sqrt(n)))
    b = L // M
    rest = x.shape[2:]
    y = x.reshape((x.shape[0], M, b, M, b) + rest)  # axes a, i, c, j
    y = y.permute((0, 2, 4, 1, 3) + tuple(range(5, 5 + len(rest))))  # -> i, j, a, c
    return y.reshape((x.shape[0], L * L) + rest)


def rope_table(L, n):
    """Full table [N + n, d_h/2]: zeros(cls) + PAR cells 0..n-1 + zeros(n-1) + PAR cells n..N-1."""
    half = HEAD_DIM // 2
    cos = np.zeros((L, L, half), dtype=np.float32)
    sin = np.zeros((L, L, half), dtype=np.float32)
    for r in range(L):
        for c in range(L):
            cos[r, c], sin[r, c] = cell_cos_sin(r, c)
    cos_p = par_permute_tensor(torch.from_numpy(cos).reshape(1, L * L, half), L, n)[0]
    sin_p = par_permute_tensor(torch.from_numpy(sin).reshape(1, L * L, half), L, n)[0]

    def assemble(t):
        z1 = t.new_zeros(1, half)
        zs = t.new_zeros(n - 1, half)
        return torch.cat([z1, t[:n], zs, t[n:]], dim=0)

    return assemble(cos_p), assemble(sin_p)


def group_mask(S, n):
    q = torch.arange(S)[:, None]
    k = torch.arange(S)[None, :]
    end = torch.where(q < n, q + 1, n + n * ((q - n) // n + 1))
    return k < end


def teacher_forced(model, classes, codes_raster, L, n, rope=None, mask=None):
    N = L * L
    z = par_permute_tensor(codes_raster, L, n)  # [B, N] PAR order
    cls = model.cls_embedding.embedding_table(classes)[:, None, :]
    tok = model.tok_embeddings(z[:, : N - 1])
    spe = model.spe_table()[None].expand(z.shape[0], -1, -1)
    x = torch.cat([cls, tok[:, :n], spe, tok[:, n:]], dim=1)
    S = N + n - 1
    assert x.shape[1] == S
    if rope is None:
        cos, sin = rope_table(L, n)
        cos, sin = cos[:S], sin[:S]
    else:
        cos, sin = rope
    allowed = group_mask(S, n) if mask is None else mask
    h = x
    for layer in model.layers:
        y = layer.attention_norm(h)
        q, k, v = layer.attention.qkv(y)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        h = h + layer.attention.wo(attend(q, k, v, allowed))
        h = h + layer.feed_forward(layer.ffn_norm(h))
    logits = model.output(model.norm(h))
    return logits[:, :N], z


# ---------------------------------------------------------------------------------------------------------
# path B: KV-cached step decode (spec §3.2), teacher-forced with the same tokens, no mask
# ---------------------------------------------------------------------------------------------------------
def par_position_to_raster(p, L, n):
    M = int(round(math.sqrt(n)))
    b = L // M
    c = p % M
    a = (p // M) % M
    j = (p // n) % b
    i = p // (n * b)
    return (a * b + i) * L + (c * b + j)


def slot_cell(slot, L, n):
    """(row, col) carried by a sequence slot, or None for the class / transition slots."""
    if slot == 0:
        return None
    if slot <= n:
        p = slot - 1
    elif slot <= 2 * n - 1:
        return None
    else:
        p = slot - n
    r = par_position_to_raster(p, L, n)
    return r // L, r % L


def slot_rope(slots, L, n):
    half = HEAD_DIM // 2
    cos = np.zeros((len(slots), half), dtype=np.float32)
    sin = np.zeros((len(slots), half), dtype=np.float32)
    for idx, s in enumerate(slots):
        cell = slot_cell(s, L, n)
        if cell is not None:
            cos[idx], sin[idx] = cell_cos_sin(*cell)
    return torch.from_numpy(cos), torch.from_numpy(sin)


class KVDecoder:
    def __init__(self, model, L, n):
        self.model, self.L, self.n = model, L, n
        self.cache = [None] * len(model.layers)
        self.next_slot = 0

    def step(self, x, slots):
        assert slots == list(range(self.next_slot, self.next_slot + len(slots)))
        self.next_slot += len(slots)
        # the spec's claim that a step needs no mask: every fed slot may see the cache and the whole step
        S_full = self.L * self.L + self.n
        full = group_mask(S_full, self.n)
        for s in slots:
            assert bool(full[s, : slots[-1] + 1].all()) and not bool(full[s, slots[-1] + 1 :].any())
        cos, sin = slot_rope(slots, self.L, self.n)
        h = x
        for li, layer in enumerate(self.model.layers):
            y = layer.attention_norm(h)
            q, k, v = layer.attention.qkv(y)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            if self.cache[li] is not None:
                k = torch.cat([self.cache[li][0], k], dim=1)
                v = torch.cat([self.cache[li][1], v], dim=1)
            self.cache[li] = (k, v)
            h = h + layer.attention.wo(attend(q, k, v, None))
            h = h + layer.feed_forward(layer.ffn_norm(h))
        return self.model.output(self.model.norm(h))


def step_decode(model, classes, codes_raster, L, n):
    N = L * L
    order = [par_position_to_raster(p, L, n) for p in range(N)]
    t = codes_raster[:, order]  # PAR tokens via the closed-form formula
    tok = model.tok_embeddings
    dec = KVDecoder(model, L, n)
    outs, kinds = [], []

    def run(kind, x, slots):
        outs.append(dec.step(x, slots))
        kinds.append((kind, slots[0], len(slots)))

    run("prefill", model.cls_embedding.embedding_table(classes)[:, None, :], [0])
    if n == 1:
        # LlamaGen: prefill + (N-1) single-token steps (spec §2.4)
        for k in range(1, N):
            run("sequential", tok(t[:, k - 1 : k]), [k])
    else:
        for k in range(1, n):
            run("sequential", tok(t[:, k - 1 : k]), [k])
        spe = model.spe_table()[None].expand(t.shape[0], -1, -1)
        run("transition", torch.cat([tok(t[:, n - 1 : n]), spe], dim=1), list(range(n, 2 * n)))
        g = 1
        while (g + 1) * n < N:
            feed = t[:, g * n : (g + 1) * n]
            run("parallel", tok(feed), list(range(g * n + n, g * n + 2 * n)))
            g += 1
        assert len(kinds) == n + (N - n) // n  # spec §1.3 step count
    logits = torch.cat(outs, dim=1)
    assert logits.shape[1] == N
    return logits, t, kinds


# ---------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------
def file_size(path):
    return os.path.getsize(path)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    # sanity: docs/ordering.md worked example
    ex = par_permute_tensor(torch.arange(16).reshape(1, 16), 4, 4)[0].tolist()
    assert ex == [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15], ex
    assert [par_position_to_raster(p, 4, 4) for p in range(16)] == ex
    ex8 = par_permute_tensor(torch.arange(64).reshape(1, 64), 8, 4)[0].tolist()[:16]
    assert ex8 == [0, 4, 32, 36, 1, 5, 33, 37, 2, 6, 34, 38, 3, 7, 35, 39], ex8

    report = []
    classes = torch.tensor(CLASSES, dtype=torch.int64)
    for ci, (name, L, n) in enumerate(CONFIGS):
        N = L * L
        gen = torch.Generator().manual_seed(SEED * 1000 + ci)
        model = GPT(n)
        init_weights(model, gen)
        model.eval()
        sd = model.state_dict()
        assert list(sd.keys()) == expected_keys(n), list(sd.keys())
        rng = np.random.default_rng(SEED * 1000 + 100 + ci)
        codes = torch.from_numpy(rng.integers(0, VOCAB, size=(BATCH, N), dtype=np.int64))

        with torch.no_grad():
            tf, z = teacher_forced(model, classes, codes, L, n)
            st, t_closed, kinds = step_decode(model, classes, codes, L, n)
            assert torch.equal(z, t_closed)
            diff = (tf - st).abs().max().item()
            assert diff < TOL, (name, diff)

            # discrimination diagnostics: how much the logits move if a detail is done wrong
            S = N + n - 1
            cos, sin = rope_table(L, n)
            diag = {}
            ident_cos, ident_sin = cos[:S].clone(), sin[:S].clone()
            zero_rows = [0] + list(range(n + 1, 2 * n))
            ident_cos[zero_rows] = 1.0
            ident_sin[zero_rows] = 0.0
            diag["identity_rope_rows_for_cls_spe"] = (
                teacher_forced(model, classes, codes, L, n, rope=(ident_cos, ident_sin))[0] - tf
            ).abs().max().item()
            diag["no_rope"] = (
                teacher_forced(model, classes, codes, L, n,
                               rope=(torch.ones_like(cos[:S]), torch.zeros_like(sin[:S])))[0] - tf
            ).abs().max().item()
            # swapped row/col halves
            hq = HEAD_DIM // 4
            sw = lambda a: torch.cat([a[:, hq:], a[:, :hq]], dim=1)
            diag["rope_row_col_swapped"] = (
                teacher_forced(model, classes, codes, L, n, rope=(sw(cos[:S]), sw(sin[:S])))[0] - tf
            ).abs().max().item()
            if n > 1:
                causal = torch.tril(torch.ones(S, S, dtype=torch.bool))
                diag["plain_causal_mask"] = (
                    teacher_forced(model, classes, codes, L, n, mask=causal)[0] - tf
                ).abs().max().item()

        tf_np = tf.numpy().astype(np.float32)
        st_np = st.numpy().astype(np.float32)
        files = {}

        def out(fname):
            p = os.path.join(OUT_DIR, fname)
            files[fname] = p
            return p

        sd_plain = OrderedDict((k, v.detach().clone().contiguous()) for k, v in sd.items())
        if name == "n1":
            ckpt = sd_plain
        elif name == "n4":
            ckpt = {
                "model": sd_plain,
                "steps": 123,
                "args": argparse.Namespace(
                    gpt_model="GPT-tiny", image_size=L * 16, downsample_size=16, vocab_size=VOCAB,
                    num_classes=NUM_CLASSES, parallel=n, cls_token_num=1, dropout_p=0.1,
                    token_dropout_p=0.1, class_dropout_prob=0.1, lr=1e-4, global_seed=SEED,
                ),
            }
        else:
            ckpt = {"state_dict": sd_plain}
        torch.save(ckpt, out(f"{name}.pt"))
        np.save(out(f"{name}_classes.npy"), classes.numpy().astype(np.int64))
        np.save(out(f"{name}_codes.npy"), codes.numpy().astype(np.int64))
        np.save(out(f"{name}_logits.npy"), tf_np)
        np.save(out(f"{name}_step_logits.npy"), st_np)
        if name == "n4":
            np.save(out(f"{name}_rope_cos.npy"), cos.numpy().astype(np.float32))
            np.save(out(f"{name}_rope_sin.npy"), sin.numpy().astype(np.float32))
        cfg = OrderedDict(
            grid_size=L, parallel=n, vocab_size=VOCAB, num_classes=NUM_CLASSES, dim=DIM, n_layer=N_LAYER,
            n_head=N_HEAD, ffn_hidden=FFN_HIDDEN, multiple_of=MULTIPLE_OF, rope_base=ROPE_BASE,
            norm_eps=NORM_EPS,
        )
        with open(out(f"{name}_config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")

        # reload check of the checkpoint
        back = torch.load(files[f"{name}.pt"])
        back_sd = {"n1": lambda c: c, "n4": lambda c: c["model"], "n16": lambda c: c["state_dict"]}[name](back)
        assert list(back_sd.keys()) == expected_keys(n)
        assert all(torch.equal(back_sd[k], sd[k]) for k in sd)

        report.append(dict(
            name=name, L=L, n=n, N=N, S=N + n - 1, steps=len(kinds), kinds=kinds, diff=diff,
            logit_std=float(tf_np.std()), logit_absmax=float(np.abs(tf_np).max()), diag=diag,
            files={k: file_size(v) for k, v in files.items()},
            rope_shape=tuple(cos.shape),
        ))
        print(f"[{name}] L={L} n={n} N={N} S={N + n - 1} steps={len(kinds)} "
              f"max|teacher-step|={diff:.3e} logits std={tf_np.std():.3f} absmax={np.abs(tf_np).max():.3f}")
        for k, v in diag.items():
            print(f"    diag {k}: max|delta logits| = {v:.3e}")

    write_manifest(report)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"total size of {OUT_DIR}: {total} bytes")


def write_manifest(report):
    lines = []
    w = lines.append
    w("# Transformer golden fixtures")
    w("")
    w("Generated by `tests/golden/gen_transformer_fixtures.py` (rerun from the repository root with")
    w("`/usr/bin/python3 tests/golden/gen_transformer_fixtures.py`). Written from docs/spec.md §1, §2, §3.2,")
    w("§4.1, §4.3, §4.5, §4.6 and docs/ordering.md; no upstream LlamaGen/PAR code was used.")
    w("")
    w(f"* torch `{torch.__version__}`, numpy `{np.__version__}`, CPU, float32 throughout, eval mode (no dropout).")
    w(f"* Seeds: `torch.manual_seed({SEED})`; weights of config #i (n1=0, n4=1, n16=2) from "
      f"`torch.Generator().manual_seed({SEED}*1000 + i)`, drawn in state_dict order; codes from "
      f"`np.random.default_rng({SEED}*1000 + 100 + i).integers(0, {VOCAB}, (B, N))`.")
    w(f"* Batch B = {BATCH}, classes = {CLASSES} (class {NUM_CLASSES} = null class, last row of the class table).")
    w("")
    w("## Model (all three configs)")
    w("")
    w(f"vocab_size {VOCAB}, num_classes {NUM_CLASSES} (class table {NUM_CLASSES + 1} rows), dim {DIM}, "
      f"n_layer {N_LAYER}, n_head {N_HEAD} (head_dim {HEAD_DIM}), ffn_hidden {FFN_HIDDEN} "
      f"(= find_multiple(int(2*4*dim/3), multiple_of={MULTIPLE_OF})), rope_base {ROPE_BASE:g}, "
      f"norm_eps {NORM_EPS:g}, no biases, output head not tied.")
    w("")
    w("Init stds (deliberately larger than the spec's 0.02 / zero output head, so that attention is far from")
    w("uniform and logits are O(1)):")
    w("")
    w(f"* `tok_embeddings`, `cls_embedding.embedding_table`, `spe_tok_embeddings.special_embeddings`: N(0, {EMB_STD}²)")
    w(f"* every Linear (`wqkv`, `wo`, `w1`, `w3`, `w2`, `output`): N(0, {LINEAR_STD}²)")
    w(f"* every RMSNorm weight (`attention_norm`, `ffn_norm`, `norm`): 1 + {NORM_NOISE}·N(0, 1)")
    w("")
    w("## Configs")
    w("")
    w("| name | grid L | n | N | teacher seq S = N+n−1 | decode steps | RoPE table rows N+n | logits std | max abs logit | max abs(teacher − step) |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in report:
        w(f"| {r['name']} | {r['L']} | {r['n']} | {r['N']} | {r['S']} | {r['steps']} | {r['N'] + r['n']} | "
          f"{r['logit_std']:.3f} | {r['logit_absmax']:.3f} | {r['diff']:.2e} |")
    w("")
    w("n1 is LlamaGen: raster order (the PAR permutation with n = 1 is the identity), no spe table, plain causal")
    w("mask, decode = prefill + (N−1) single-token steps. n4 / n16: PAR layout of docs/spec.md §2.1, group mask §2.2,")
    w("decode = prefill, n−1 sequential steps, one transition step, parallel steps (§3.2).")
    w("")
    w("## Files (per config `{name}` ∈ {n1, n4, n16})")
    w("")
    w("| file | content | dtype | shape |")
    w("|---|---|---|---|")
    w("| `{name}.pt` | `torch.save` (zipfile) checkpoint. n1: bare state_dict. n4: `{\"model\": state_dict, "
      "\"steps\": 123, \"args\": argparse.Namespace(...)}` (pickled Namespace, non-tensor: the importer must skip it). "
      "n16: `{\"state_dict\": state_dict}`. Keys exactly docs/spec.md §4.5, in that order; `spe_tok_embeddings.*` "
      "only for n > 1 (shape [n−1, dim]). Linear weights are PyTorch `[out, in]`. | float32 | — |")
    w("| `{name}_classes.npy` | class ids | int64 | [B] |")
    w("| `{name}_codes.npy` | image codes in **raster** order | int64 | [B, N] |")
    w("| `{name}_logits.npy` | teacher-forced logits, sequence positions 0..N−1 (PAR order: index p predicts PAR token t_p) | float32 | [B, N, V] |")
    w("| `{name}_step_logits.npy` | KV-cached step-decode logits, teacher-forced with the same tokens, concatenated over steps in order | float32 | [B, N, V] |")
    w("| `{name}_config.json` | grid_size, parallel, vocab_size, num_classes, dim, n_layer, n_head, ffn_hidden, multiple_of, rope_base, norm_eps | — | — |")
    w("| `n4_rope_cos.npy`, `n4_rope_sin.npy` (n4 only) | the full 2D RoPE table over the N+n = 20 slots of the full layout: row 0 (class) and rows n+1..2n−1 = 5..7 (transition) are **zero** (cos = sin = 0); other rows are the PAR-permuted grid cells. Column m < d_h/4: angle row·θ_m, column d_h/4 + m: angle col·θ_m, θ_m = 10000^(−4m/d_h). Computed in float64, stored float32. | float32 | [20, 8] |")
    w("")
    w("Sizes (bytes):")
    w("")
    total = 0
    for r in report:
        for f, s in r["files"].items():
            w(f"* `{f}`: {s}")
            total += s
    w("")
    w(f"Total (excluding this manifest): {total} bytes.")
    w("")
    w("## Self-check and discrimination")
    w("")
    w("The script asserts max |teacher − step| < 1e-5 for every config, that the state_dict keys are exactly the")
    w("§4.5 list, that the checkpoint reloads bit-identically, the docs/ordering.md 4×4 worked order, and that every")
    w("decode step's slots see exactly (cache + whole step) under the closed-form group mask.")
    w("")
    w("How far the teacher-forced logits move (max abs) if one detail is done wrong — a port that gets it wrong")
    w("fails a 1e-4 comparison against these fixtures:")
    w("")
    for r in report:
        items = ", ".join(f"{k} {v:.3f}" for k, v in r["diag"].items())
        w(f"* {r['name']}: {items}")
    w("")
    with open(os.path.join(OUT_DIR, "MANIFEST.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
