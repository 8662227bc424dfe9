#!/usr/bin/env bash
# The GPU bench stage of issue 17, as run on a remote CUDA machine without network (BENCHMARKS.md "GPU").
#
# That machine has its own Python 3.12, torch (CUDA) and transformers 5, no network and no onnxruntime-gpu, and a
# call carries at most 64 MiB. experiments/gpu_payload.py therefore packs, on this machine, the pinned wheels
# edgepress needs (transformers 4.57, datasets, pydantic, optimum, an edgepress wheel) and one xz stream of
# onnxruntime-gpu + a finished run's models + its recipe's test file and bench options (bench.args), split into
# parts carried as .gpu1/, .gpu2/, ... (one per call; git-ignored through .git/info/exclude).
# Each step below is one word; a call runs some of them in order:
#   stash    copy the carried .gpu*/ parts to /tmp/stage (kept while the machine stays warm)
#   probe    print what the machine has (GPU, python, CUDA libraries, tools)
#   install  install the carried wheels into /tmp/site and import edgepress
#   unpack   extract what of the stream has arrived (complete files only are used)
#   smoke    open the ONNX files on the CUDA provider and run edgepress bench briefly on them
#   bench    the bench stage: teacher and winner in torch CUDA fp16, winner INT8 and fp16 ONNX on ORT's CUDA
#            provider, Optimum's fused fp32 ONNX of the teacher; batch 1 and 32, the recipe's test file; report under
#            $OUT/cuda
set -uo pipefail
STAGE=/tmp/stage PL=/tmp/pl SITE=/tmp/site
export PYTHONPATH=$SITE PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$STAGE" "$PL" "$SITE"
nvidia_libs() {
    local sp
    sp=$(python3 -c 'import site; print(site.getsitepackages()[0])')
    find "$sp/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:
}
export LD_LIBRARY_PATH="$(nvidia_libs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
edgepress() { python3 -m compress.cli.main "$@"; }  # the carried edgepress wheel, under that machine's python3

for step in "$@"; do
    echo "== $step ($(date +%T))"
    case $step in
    stash)
        for part in .gpu*/; do cp -r "$part". "$STAGE"/; done
        ls -la "$STAGE" ;;
    probe)
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        python3 -VV; which xz tar
        nproc; grep -m1 'model name' /proc/cpuinfo
        python3 -m pip list 2>/dev/null | grep -i -E '^(torch|onnxruntime|transformers|numpy|pyarrow|fsspec|xxhash|accelerate|protobuf|onnx|nvidia-cudnn|nvidia-cublas|safetensors|sympy) '
        echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" ;;
    install)
        python3 -m pip uninstall -q -y onnxruntime || true
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$STAGE"/whl/*.whl || exit 1
        python3 -c 'import compress.cli.main, benchmarks.cli, transformers, datasets, optimum.onnxruntime.configuration as _, torch; print("edgepress imports; transformers", transformers.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())' || exit 1 ;;
    unpack)
        cat "$STAGE"/payload.part* | xz -dc 2>/dev/null | tar -x -C "$PL" 2>/dev/null
        cp -r "$PL"/site/. "$SITE"/ && du -sh "$PL"/* "$PL"/models/* 2>/dev/null ;;
    smoke)
        python3 - <<'EOF' || exit 1
import numpy as np, onnxruntime as ort
print("onnxruntime", ort.__version__, ort.get_available_providers())
for name in ("model_quantized.onnx", "model.fp16.onnx"):
    s = ort.InferenceSession(f"/tmp/pl/models/onnx/{name}", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    feeds = {i.name: np.ones((1, 12), dtype=np.int64) for i in s.get_inputs()}
    print(name, s.get_providers(), [o.shape for o in s.run(None, feeds)])
EOF
        # shellcheck disable=SC2046
        edgepress bench run winner-int8="$PL"/models/onnx/model_quantized.onnx winner-fp16="$PL"/models/onnx/model.fp16.onnx \
            --tokenizer "$PL"/models/onnx $(cat "$PL"/bench.args) --max-samples 64 \
            --batch 1,32 --device cuda --warmup 2 --min-runs 5 --min-seconds 0 --rounds 1 \
            --out /tmp/smoke --allow-partial || exit 1 ;;
    bench)
        mkdir -p "${OUT:-/tmp/out}"
        # shellcheck disable=SC2046
        timeout 480 python3 -m compress.cli.main bench run \
            winner-pytorch="$PL"/models/student winner-int8="$PL"/models/onnx/model_quantized.onnx \
            winner-fp16="$PL"/models/onnx/model.fp16.onnx --teacher "$PL"/models/teacher $(cat "$PL"/bench.args) \
            --batch 1,32 --device cuda --baseline optimum-onnx-fused \
            --warmup 10 --min-runs 200 --min-seconds 5 --rounds 5 --out "${OUT:-/tmp/out}"/cuda --allow-partial \
            2>&1 | tee "${OUT:-/tmp/out}"/bench.log ;;
    *) echo "unknown step $step"; exit 2 ;;
    esac
done
