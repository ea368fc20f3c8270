#!/usr/bin/env bash
# Quality of each `hearth quantize` type against the float32 original: perplexity, mean KL divergence
# KL(f32 ‖ quantized) and top-1 agreement on the same token windows (`hearth eval --reference`), for stories260K
# (the bundled model, on bench/data/story.txt) and for a random SmolLM2-135M-shaped model (make_random_model, with
# stories260K's tokenizer, so the text is the same tokens). Prints a Markdown table (docs/quantize.md holds one).
#
#   bench/quant_quality.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
H=$B/apps/hearth
TEXT=bench/data/story.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
$B/bench/make_random_model "$TMP/smollm2" --preset smollm2-135m --tokenizer models/stories260K >/dev/null
echo "| model | type | bits/weight | perplexity (f32) | Δ perplexity | mean KL (nats) | top-1 agreement |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for m in models/stories260K "$TMP/smollm2"; do
  name=$([ "$m" = models/stories260K ] && echo stories260K || echo "random SmolLM2-135M shape")
  for t in f16 bf16 q8_0 q6_k q4_k_m q4_0; do
    bpw=$($H -q --json quantize -m "$m" --type $t --out "$TMP/q.gguf" | python3 -c 'import json,sys;print("%.2f" % json.load(sys.stdin)["bits_per_weight"])')
    $H -q --json eval -m "$TMP/q.gguf" --text-file $TEXT --ctx 256 --reference "$m" | python3 -c '
import json, sys
j = json.load(sys.stdin)
name, t, bpw = sys.argv[1:4]
ppl, ref, kl, top1 = j["perplexity"], j["reference_perplexity"], j["mean_kl"], 100 * j["top1_agreement"]
print(f"| {name} | {t} | {bpw} | {ppl:.4f} ({ref:.4f}) | {100 * (ppl / ref - 1):+.2f}% | {kl:.5f} | {top1:.1f}% |")
' "$name" $t "$bpw"
  done
done
