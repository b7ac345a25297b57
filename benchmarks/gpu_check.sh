#!/usr/bin/env bash
# The GPU check, in one command (needs CuPy 13 or 14 and a CUDA GPU; PyTorch with CUDA for the peers):
#
#     OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
#
# 1. the GPU-only tests (the kernels against NumPy on NaN/Inf, CUDA-graph capture), then the
#    whole suite on CuPy with npgan's CUDA kernels (NPGAN_BACKEND=cupy);
# 2. the layer, loss, optimizer and training tests on CuPy's generic path (NPGAN_KERNELS=0);
# 3. bench_layers.py and bench_step.py --backend cupy (batch 64, 256, 1024; eager and CUDA graph;
#    PyTorch eager and CUDA graph on the same GPU, in the same run).
# Every part writes its log to $OUT and has its own time limit, so the whole check ends within
# under 8 minutes on an H100/H200 even when a part hangs; the summary is $OUT/summary.txt.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export MPLBACKEND=Agg NPGAN_OFFLINE=1 PYTHONUNBUFFERED=1
summary="$OUT/summary.txt"
: > "$summary"

part() {    # part NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, note the outcome
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    local last
    last=$(grep -E "passed|failed|error" "$OUT/$name.log" | tail -n 1)
    echo "$name: exit $rc in $((SECONDS - start)) s${last:+ ($last)}" | tee -a "$summary"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__); print('cuda runtime', cupy.cuda.runtime.runtimeGetVersion())"
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1
    git rev-parse HEAD 2>/dev/null
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >> "$summary"

part gpu_only 45 env NPGAN_BACKEND=cupy python -m pytest -q -p no:cacheprovider tests/test_gpu_kernels.py tests/test_graph.py
part pytest_cupy_kernels 170 env NPGAN_BACKEND=cupy python -m pytest -q --durations=10 -p no:cacheprovider
part pytest_cupy_generic 75 env NPGAN_BACKEND=cupy NPGAN_KERNELS=0 python -m pytest -q -p no:cacheprovider \
    tests/test_layers_gradcheck.py tests/test_layers_torch_parity.py tests/test_losses.py tests/test_optim.py \
    tests/test_gan_recipe.py tests/test_graph.py tests/test_train.py
part bench_layers 50 python benchmarks/bench_layers.py --backend cupy
part bench_step 110 python benchmarks/bench_step.py --backend cupy --batch 64 256 1024 --breakdown
