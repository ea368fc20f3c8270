#!/usr/bin/env python3
"""Hugging Face transformers + PEFT reference for bench_gpu_finetune.py: the same LoRA training step as
bench_finetune on the same model shape, on a GPU.

A randomly initialised LlamaForCausalLM of the preset's shape in bfloat16 (or float32), PEFT LoRA (rank r, alpha
2r, dropout 0.05) on the chosen projections, mean next-token cross-entropy, backward, torch.optim.AdamW over the
LoRA weights. Two warm-up steps, then `--steps` timed ones, then three timed phase by phase. Prints two lines:
    RESULT <tokens_per_s> <peak_allocated_mib> <peak_reserved_mib>
    PHASES <forward_ms> <backward_ms> <clip_and_adamw_ms>
Written for hearth's benchmarks; not copied from any project. Needs torch with CUDA, transformers and peft.
"""
import argparse
import time

import torch

PRESETS = {
    # The same shapes as bench/model_presets.h.
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0, head_dim=64),
    "llama-3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, head_dim=64),
}
TARGETS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
           "down": "down_proj"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="llama-3.2-1b", choices=sorted(PRESETS))
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--targets", default="q,k,v,o,gate,up,down")
    p.add_argument("--checkpointing", action="store_true")
    a = p.parse_args()

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    dtype = getattr(torch, a.dtype)
    config = LlamaConfig(**PRESETS[a.preset], max_position_embeddings=8192, rms_norm_eps=1e-5,
                         tie_word_embeddings=True, torch_dtype=dtype)
    model = LlamaForCausalLM(config).to(device="cuda", dtype=dtype)
    if a.checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.05,
                      target_modules=[TARGETS[t] for t in a.targets.split(",")], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    gen = torch.Generator(device="cuda").manual_seed(2)

    def step(mark=lambda phase: None):
        tokens = torch.randint(0, config.vocab_size, (a.batch, a.seq), device="cuda", generator=gen)
        loss = model(input_ids=tokens, labels=tokens).loss
        mark(0)
        loss.backward()
        mark(1)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        mark(2)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    mib = 1024 * 1024
    print(f"RESULT {a.batch * a.seq * a.steps / seconds:.1f} {torch.cuda.max_memory_allocated() / mib:.0f} "
          f"{torch.cuda.max_memory_reserved() / mib:.0f}", flush=True)
    # Three more steps waiting for the GPU after each phase: forward, backward, clip + AdamW, in milliseconds.
    ms, n, last = [0.0, 0.0, 0.0], 3, [0.0]

    def mark(phase):
        torch.cuda.synchronize()
        now = time.perf_counter()
        ms[phase] += (now - last[0]) * 1000 / n
        last[0] = now

    for _ in range(n):
        last[0] = time.perf_counter()
        step(mark)
    print(f"PHASES {ms[0]:.1f} {ms[1]:.1f} {ms[2]:.1f}", flush=True)


if __name__ == "__main__":
    main()
