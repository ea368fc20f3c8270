#!/usr/bin/env bash
# GPU-machine check for data-parallel training (docs/distributed.md): builds lib/train/distributed.cpp and
# tests/train/test_distributed.cpp against the pip torch 2.x of `python3` (CUDA, NCCL from site-packages/nvidia/nccl,
# Gloo's headers from the wheel), then runs the ProcessGroup tests (two forked Gloo workers, the torchrun variables,
# NCCL on one GPU) and workers started by torchrun (Gloo with 2, NCCL with 1). Needs only torch, g++ and nvcc's
# headers there, plus fmt's and Catch2's headers: copy /usr/include/fmt and /usr/include/catch2 into a folder
# (default .devinc/, or HEARTH_EXTRA_INCLUDE) that travels with the tree.
set -x
pwd; git log --oneline -1; ls lib/train | tr '\n' ' '; echo
nvidia-smi -L
TP=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")
python3 -c "import torch;print(torch.__version__, torch.cuda.is_available(), torch.distributed.is_nccl_available())"
NCCLINC=$(python3 -c "import nvidia.nccl,os;print(os.path.join(list(nvidia.nccl.__path__)[0],'include'))")
ls $NCCLINC; ls -d $TP/include/gloo; g++ --version | head -1
CUDAINC=$(dirname $(dirname $(command -v nvcc)))/include
FLAGS="-std=c++17 -O1 -DFMT_HEADER_ONLY -Ilib -Itests -I"${HEARTH_EXTRA_INCLUDE:-.devinc}" -I$TP/include -I$TP/include/torch/csrc/api/include -I$NCCLINC -I$CUDAINC -DHEARTH_SOURCE_DIR=\"$PWD\" -DHEARTH_TEST_ASSETS_DIR=\"/tmp\""
mkdir -p /tmp/o
g++ $FLAGS -DUSE_C10D_GLOO -DUSE_C10D_NCCL -DHEARTH_NCCL -c lib/train/distributed.cpp -o /tmp/o/d.o 2>&1 | tail -30 &
g++ $FLAGS -c tests/train/test_distributed.cpp -o /tmp/o/t.o 2>&1 | tail -30 &
g++ $FLAGS -c tests/test_main.cpp -o /tmp/o/m.o 2>&1 | tail -5 &
wait
g++ /tmp/o/*.o -L$TP/lib -Wl,--no-as-needed -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda -Wl,-rpath,$TP/lib -o /tmp/tdist 2>&1 | tail -20
timeout 120 /tmp/tdist -w NoTests "[distributed]~[torchrun]"; echo "catch rc=$?"
timeout 60 torchrun --nproc-per-node 2 --no-python /tmp/tdist "[torchrun]"; echo "torchrun gloo rc=$?"
HEARTH_TEST_CUDA=1 timeout 60 torchrun --nproc-per-node 1 --no-python /tmp/tdist "[torchrun]"; echo "torchrun nccl rc=$?"
