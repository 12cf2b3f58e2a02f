#!/usr/bin/env bash
# Every CUDA test and the GPU benchmarks in one run, for a machine with a CUDA device:
#   bash bench/gpu_run.sh [OUTDIR]        (default OUTDIR: bench/results)
# Writes gpu_env.log, gpu_tests.log, guided_torch--cuda.json/.log and train--cuda[-amp].json/.log into
# OUTDIR. Runs from the repository root with the python3 on PATH (PYTHON overrides it); maskrefine is
# imported from the tree (PYTHONPATH), so nothing needs installing beyond torch, numba, numpy, scipy,
# OpenCV, scikit-image, click, pytest and pytest-xdist (and kornia, guided-filter-pytorch for the peers).
# Each step has its own time limit; a step that fails is reported and the next one still runs.
set -u
out=${1:-bench/results}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUTDIR/NAME.log, note the exit code
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s (limit $limit s)" | tee -a "$out/$name.log"
    tail -n 25 "$out/$name.log"
    [ "$rc" -eq 0 ] || status=1
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    "$py" -c "import sys, torch, numba, numpy, cv2; print(sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.version.cuda, torch.cuda.get_device_name(), 'numba', numba.__version__, 'numpy', \
numpy.__version__, 'cv2', cv2.__version__)"
    "$py" -c "import kornia, guided_filter_pytorch; print('kornia', kornia.__version__)" || true
} > "$out/gpu_env.log" 2>&1
cat "$out/gpu_env.log"

# CUDA cases of the filter suites (their numba/torch-CPU cases run in CI) and the trainer's CUDA tests
# (-k matches the module name too: every test of test_train_cuda.py is kept)
step gpu_tests "${GPU_TESTS_LIMIT:-200}" "$py" -m pytest -q -p no:cacheprovider -rs -n 4 \
    tests/torch_backend tests/filters tests/train/test_train_cuda.py -k cuda
step guided_torch--cuda "${GPU_BENCH_LIMIT:-150}" "$py" bench/guided_torch.py --cuda \
    --json "$out/guided_torch--cuda.json"
step train--cuda 60 "$py" bench/train.py --device cuda --steps 10 --warmup 3 --json "$out/train--cuda.json"
step train--cuda-amp 60 "$py" bench/train.py --device cuda --amp --steps 10 --warmup 3 \
    --json "$out/train--cuda-amp.json"
exit $status
