#!/usr/bin/env bash
# The main job on the bundled defaults, on a fresh Debian 12 machine: install dependencies, build, then the
# whole personal-model path with the bundled model (models/stories260K, a real pretrained 260K-parameter
# Llama) and the bundled sample data (datasets/personal):
#   ingest the samples -> LoRA fine-tune (recipes/quickstart.yaml) -> generate with the new adapter
#   -> export it for llama.cpp and Ollama (runs/quickstart-export: a merged GGUF and a Modelfile).
# Re-running it re-ingests only what changed and resumes/continues the run in runs/quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh --target hearth >/dev/null
H=build/apps/hearth

echo "== 1/4 hearth ingest datasets/personal ==" >&2
$H ingest datasets/personal --model models/stories260K --out runs/quickstart-data --seq-len 256

echo "== 2/4 hearth finetune-lora recipes/quickstart.yaml ==" >&2
$H finetune-lora recipes/quickstart.yaml --fresh
$H report runs/quickstart >/dev/null

echo "== 3/4 hearth generate with the adapter (runs/quickstart/adapters/latest) ==" >&2
$H generate --model models/stories260K --adapter runs/quickstart/adapters/latest \
  --prompt "Once upon a time" --max-tokens 120 --seed 42

echo "== 4/4 hearth export ollama (merged GGUF + Modelfile in runs/quickstart-export) ==" >&2
$H export ollama --model models/stories260K --adapter runs/quickstart/adapters/latest \
  --out runs/quickstart-export --type q8_0 --force
echo "(training report: runs/quickstart/report.html; llama.cpp: llama-cli -m runs/quickstart-export/model.gguf;" \
  "Ollama: cd runs/quickstart-export && ollama create quickstart -f Modelfile)" >&2
