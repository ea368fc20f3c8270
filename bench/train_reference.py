#!/usr/bin/env python3
"""PyTorch-eager reference for bench_finetune: the same LoRA training step on the same model shape.

A plain Llama forward (RMSNorm, RoPE rotate-half, GQA, SwiGLU, tied head), frozen float32 base weights, LoRA
(A: [r, in], B: [out, r], scale alpha/r, dropout) on the chosen projections, mean cross-entropy over all
next-token targets, backward, grad clipping and torch.optim.AdamW. Prints one line:
    RESULT <tokens_per_s> <peak_rss_mib>
Written for hearth's benchmarks (Debian's python3-torch); not copied from any project.
"""
import argparse, math, resource, time
import torch
import torch.nn.functional as F


def rms(x, w, eps=1e-5):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


class Lora:
    def __init__(self, out_f, in_f, r, alpha, dropout):
        self.A = (torch.rand(r, in_f) * 2 - 1).div_(math.sqrt(in_f)).requires_grad_()
        self.B = torch.zeros(out_f, r).requires_grad_()
        self.scale, self.dropout = alpha / r, dropout

    def __call__(self, x):
        return F.linear(F.linear(F.dropout(x, self.dropout, True), self.A), self.B) * self.scale


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--targets", default="q,k,v,o,gate,up,down")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    C, F_, L, H, KV, V = 576, 1536, 30, 9, 3, 49152
    hd = C // H
    n = lambda *s: torch.randn(*s) * 0.02
    embed = n(V, C)
    layers = [dict(q=n(H * hd, C), k=n(KV * hd, C), v=n(KV * hd, C), o=n(C, H * hd), gate=n(F_, C), up=n(F_, C),
                   down=n(C, F_), n1=torch.ones(C), n2=torch.ones(C)) for _ in range(L)]
    norm = torch.ones(C)
    targets = a.targets.split(",")
    lora = [{t: Lora(l[t].shape[0], l[t].shape[1], a.rank, 2 * a.rank, a.dropout) for t in targets} for l in layers]
    params = [w for d in lora for m in d.values() for w in (m.A, m.B)]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    inv = 1.0 / (100000.0 ** (torch.arange(0, hd, 2).float() / hd))
    pos = torch.arange(a.seq).float()
    emb = torch.cat([pos[:, None] * inv[None], pos[:, None] * inv[None]], -1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]
    mask = torch.full((a.seq, a.seq), float("-inf")).triu(1)

    def proj(x, l, ad, name):
        y = F.linear(x, l[name])
        return y + ad[name](x) if name in ad else y

    def step(tokens):
        B, T = tokens.shape
        x = embed[tokens]
        for l, ad in zip(layers, lora):
            h = rms(x, l["n1"])
            q = proj(h, l, ad, "q").view(B, T, H, hd).transpose(1, 2)
            k = proj(h, l, ad, "k").view(B, T, KV, hd).transpose(1, 2)
            v = proj(h, l, ad, "v").view(B, T, KV, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
            x = x + proj(att.transpose(1, 2).reshape(B, T, C), l, ad, "o")
            h2 = rms(x, l["n2"])
            x = x + proj(F.silu(proj(h2, l, ad, "gate")) * proj(h2, l, ad, "up"), l, ad, "down")
        logits = F.linear(rms(x, norm), embed)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        return loss.item()

    data = torch.randint(3, V, (a.steps + 1, a.batch, a.seq))
    step(data[0])  # warm-up
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(data[i + 1])
    dt = time.perf_counter() - t0
    tps = a.steps * a.batch * a.seq / dt
    print(f"RESULT {tps} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}", flush=True)


if __name__ == "__main__":
    main()
