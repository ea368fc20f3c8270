#!/usr/bin/env python3
"""LoRA training on a GPU: hearth (bench_finetune --one --device cuda) against Hugging Face transformers + PEFT
(bench/hf_peft_reference.py) on the same model shape, batch, sequence length, rank and targets.

    bench/bench_gpu_finetune.py BUILD_DIR [--preset llama-3.2-1b] [--batch 4] [--seq 512] [--steps 10] [--rank 8]
                                [--extra 'hearth-only flags, e.g. --base q4_0']

Peak GPU memory is the process's own as nvidia-smi reports it (sampled every 50 ms; CUDA context included on both
sides, so the two are comparable). Prints a table. Needs an NVIDIA GPU, nvidia-smi, torch, transformers, peft.
"""
import argparse
import os
import subprocess
import sys
import threading
import time


def gpu_peak_mib(proc):
    """Largest used_memory nvidia-smi reports for `proc` while it runs."""
    peak = 0
    while proc.poll() is None:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0] == str(proc.pid) and parts[1].isdigit():
                peak = max(peak, int(parts[1]))
        time.sleep(0.05)
    return peak


def run(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {}
    t = threading.Thread(target=lambda: peak.setdefault("mib", gpu_peak_mib(proc)))
    t.start()
    out = proc.stdout.read()
    proc.wait()
    t.join()
    result = [line.split() for line in out.splitlines() if line.startswith("RESULT")]
    phases = [line.split()[1:] for line in out.splitlines() if line.startswith("PHASES")]
    if proc.returncode != 0 or not result:
        print(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}", file=sys.stderr)
        return None
    return float(result[-1][1]), peak.get("mib", 0), " / ".join(phases[-1]) if phases else "-"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--preset", default="llama-3.2-1b")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--targets", default="q,k,v,o,gate,up,down")
    p.add_argument("--extra", action="append", default=[], help="a hearth-only variant: extra bench_finetune flags")
    a = p.parse_args()
    common = ["--batch", str(a.batch), "--seq", str(a.seq), "--steps", str(a.steps), "--rank", str(a.rank),
              "--targets", a.targets]
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []
    # LoRA dropout 0.05 on both sides (hf_peft_reference.py's); phase times after the timed steps
    hearth = [os.path.join(a.build, "bench", "bench_finetune"), "--one", "--device", "cuda", "--preset", a.preset,
              "--dropout", "0.05", "--phases"]
    rows.append(("hearth bf16 LoRA", run(hearth + ["--dtype", "bfloat16"] + common)))
    for extra in a.extra:
        rows.append((f"hearth bf16 {extra}", run(hearth + ["--dtype", "bfloat16"] + extra.split() + common)))
    rows.append(("HF + PEFT bf16 LoRA", run([sys.executable, os.path.join(here, "hf_peft_reference.py"),
                                             "--preset", a.preset, "--dtype", "bfloat16"] + common)))
    print(f"LoRA training on {subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'], capture_output=True, text=True).stdout.strip()}: "
          f"{a.preset} shape, batch {a.batch} x seq {a.seq}, rank {a.rank} on {a.targets}, {a.steps} timed steps")
    print(f"{'':<34} {'tokens/s':>10} {'peak GPU MiB':>13}   forward / backward / optimizer ms")
    for name, r in rows:
        print(f"{name:<34} {r[0]:>10.0f} {r[1]:>13}   {r[2]}" if r else f"{name:<34} {'failed':>10}")
    h, ref = rows[0][1], rows[-1][1]
    if h and ref:
        print(f"{'hearth / HF':<34} {h[0] / ref[0]:>9.2f}x {h[1] / max(ref[1], 1):>12.2f}x")


if __name__ == "__main__":
    main()
