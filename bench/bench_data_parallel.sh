#!/usr/bin/env bash
# bench_data_parallel: data-parallel LoRA training on the SmolLM2-135M shape (random weights) — 2 workers × 1 thread
# (Gloo over 127.0.0.1) against 1 worker × 2 threads, the same global batch and steps. Prints tokens/s and the
# share of the step time the workers spent summing gradients (all-reduce, packing included).
#
#   bench/bench_data_parallel.sh [BUILD_DIR] [STEPS] [SEQ]     (defaults: build 8 128)
# Needs build/apps/hearth and build/bench/make_random_model. See bench/README.md for numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"; STEPS="${2:-8}"; SEQ="${3:-128}"
H="$BUILD/apps/hearth"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
"$BUILD/bench/make_random_model" "$WORK/model" --preset smollm2-135m --tokenizer models/stories260K >/dev/null
mkdir -p "$WORK/src"
for i in $(seq 1 64); do
  for j in $(seq 1 12); do echo -n "Story $i part $j: the little robot walked to the market and bought a red apple. "; done >"$WORK/src/s$i.txt"
done
"$H" -q ingest "$WORK/src" --model "$WORK/model" --out "$WORK/data" --seq-len "$SEQ"
cat >"$WORK/recipe.yaml" <<YAML
model: $WORK/model
datasets: [$WORK/data]
output_dir: unused
lora: {rank: 8, alpha: 16, dropout: 0.05, target_modules: [q, k, v, o, gate, up, down]}
training: {micro_batch_size: 1, gradient_accumulation_steps: 2, max_steps: $STEPS, seq_len: $SEQ, seed: 1}
eval: {every: 0}
checkpoint: {every: 1000}
YAML
run() {  # name, hearth arguments...
  local name="$1"; shift
  local out; out=$("$H" --json "$@" 2>/dev/null)
  python3 - "$name" "$out" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
share = r["all_reduce_seconds"] / r["seconds"] if r["seconds"] else 0
print(f"| {name} | {r['tokens_per_second']:.1f} | {r['seconds']:.1f} | {r['all_reduce_seconds']:.2f} | {100 * share:.1f}% | {r['train_loss']:.4f} |")
PY
}
echo "| layout | tokens/s | train s | all-reduce s (rank 0) | all-reduce share | last loss |"
echo "| --- | --- | --- | --- | --- | --- |"
run "1 worker × 2 threads" --threads 2 finetune-lora "$WORK/recipe.yaml" output_dir="$WORK/run1"
run "2 workers × 1 thread" --threads 1 finetune-lora "$WORK/recipe.yaml" output_dir="$WORK/run2" \
  training.gradient_accumulation_steps=1 --nproc-per-node 2
