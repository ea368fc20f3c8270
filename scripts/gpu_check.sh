#!/bin/bash
# On a GPU machine with a pip CUDA torch (python3 -c "import torch"), from the repo root: build hearth against it and
# run the CUDA checks. Needs .gpudeps/ from scripts/gpu_deps.sh (made on a Debian 12 machine, carried along) and
# writes logs to $OUT (default /tmp/hearth-gpu). Usage: scripts/gpu_check.sh [build] [checks] [bench]
set -uo pipefail
OUT=${OUT:-/tmp/hearth-gpu}; mkdir -p "$OUT"
D=$PWD/${HEARTH_GPU_DEPS:-.gpudeps}
t0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
for f in $D/lib/*.so.*; do
  so=$(basename $f); p=$(ldconfig -p | awk -v s=$so '$1==s{print $NF; exit}')
  if [ -n "$p" ]; then rm -f $f; ln -s $p $f; fi
done
TP=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
TL=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export PKG_CONFIG_PATH=$D/pkgconfig LD_LIBRARY_PATH=$D/lib:$TL
[ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=/usr/local/cuda/bin/nvcc PATH=/usr/local/cuda/bin:$PATH
B=build-cuda
H=$B/apps/hearth
TARGETS=${TARGETS:-hearth test_model test_train bench_finetune}
for what in "$@"; do case $what in
build)
  stamp configure
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TP" -DCatch2_DIR=$D/lib/cmake/Catch2 \
    -DHEARTH_BUILD_TESTS=ON -DHEARTH_BUILD_BENCH=ON -DCMAKE_CXX_FLAGS="-isystem $D/gloo" >$OUT/configure.log 2>&1 \
    || { tail -40 $OUT/configure.log; exit 1; }
  grep -E "fmt:|hearth:|NCCL" $OUT/configure.log | head -8
  stamp build $TARGETS
  ninja -C $B -k 0 $TARGETS >$OUT/build.log 2>&1; rc=$?
  grep -E "error|FAILED" $OUT/build.log | head -40
  stamp "build rc=$rc"; [ $rc = 0 ] || exit 1 ;;
checks)
  stamp "test_model [gpu]"
  (cd $B/tests && ./test_model "[gpu]" 2>&1 | tail -30)
  stamp "test_train [gpu] (NCCL on one device, QLoRA on CUDA)"
  (cd $B/tests && ./test_train -w NoTests "[gpu]" 2>&1 | tail -30)
  stamp "generate: stories260K greedy, CPU vs CUDA float32"
  $H --json generate -m models/stories260K -p "Once upon a time" --temp 0 -n 64 --device cpu >/tmp/cpu.json
  $H --json generate -m models/stories260K -p "Once upon a time" --temp 0 -n 64 --device cuda >/tmp/cuda.json
  python3 - <<'PY'
import json
a, b = json.load(open("/tmp/cpu.json")), json.load(open("/tmp/cuda.json"))
ka = [k for k in a if "ids" in k or k == "text"]
print("keys", ka)
for k in ka: print(k, "equal" if a[k] == b[k] else f"DIFFER cpu={a[k]!r:.200} cuda={b[k]!r:.200}")
PY
  stamp "generate: kq256 q4_0 GGUF on CUDA (decoded at load)"
  $H --json generate -m tests/fixtures/kq256/model-q4_0.gguf -p "hello" --temp 0 -n 16 --device cuda | head -c 600; echo
  stamp "finetune-lora quickstart on CUDA (bf16 and float32)"
  $H ingest datasets/personal --model models/stories260K --out /tmp/qs-data --seq-len 256 >/dev/null 2>&1
  for dt in float32 bfloat16; do
    sed -e "s#../runs/quickstart-data#/tmp/qs-data#; s#../runs/quickstart#/tmp/qs-$dt#; s#^model: ../models#model: $PWD/models#" \
      recipes/quickstart.yaml > /tmp/qs-$dt.yaml
    /usr/bin/time -f "%e s wall, %M KB RSS" $H --json --device cuda finetune-lora /tmp/qs-$dt.yaml training.dtype=$dt --fresh \
      >/tmp/ft-$dt.json 2>/tmp/ft-$dt.err; echo "rc=$?"; tail -3 /tmp/ft-$dt.err; head -c 800 /tmp/ft-$dt.json; echo
  done
  stamp "QLoRA finetune-lora on CUDA (quantize_base q4_0), adapter on the unquantized base"
  /usr/bin/time -f "%e s wall, %M KB RSS" $H --json --device cuda finetune-lora /tmp/qs-float32.yaml quantize_base=q4_0 output_dir=/tmp/qs-q4 --fresh \
    >/tmp/ft-q4.json 2>/tmp/ft-q4.err; echo "rc=$?"; tail -3 /tmp/ft-q4.err; head -c 600 /tmp/ft-q4.json; echo
  $H --json generate -m models/stories260K --adapter /tmp/qs-q4/adapters/latest -p "Once upon a time" --temp 0 -n 16 --device cuda | head -c 300; echo
  stamp "finetune-lora through the launcher: 1 worker, NCCL"
  $H --device cuda finetune-lora /tmp/qs-float32.yaml --fresh --nproc-per-node 1 training.max_steps=6 >/tmp/dp.out 2>&1; echo "rc=$?"; tail -4 /tmp/dp.out
  $H --json generate -m models/stories260K --adapter /tmp/qs-float32/adapters/latest -p "Once upon a time" --temp 0 -n 24 --device cuda | head -c 400; echo ;;
bench)
  stamp "bench: LoRA training on the GPU, hearth vs HF transformers + PEFT"
  python3 bench/bench_gpu_finetune.py $B --extra "--attention explicit" --extra "--base q4_0" --steps 6 ${BENCH_ARGS:-} 2>&1 | tail -20 ;;
esac; done
stamp done
