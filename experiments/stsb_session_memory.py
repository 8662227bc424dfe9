"""Session memory of the STS-B headline's winner and Optimum baselines at batch 1 only: the bench's probe
(benchmarks.memory, a fresh process per file), on the lengths of stsb/test.tsv.

    python experiments/stsb_session_memory.py [RUN_DIR]   (default /tmp/ep/runs/stsb-minilm)
"""
import csv, sys
from benchmarks.harness import BenchSettings
from benchmarks.memory import session_memory
from benchmarks.feeds import token_lengths
from compress.models import load_tokenizer
from benchmarks.runners.base import Threads
R = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ep/runs/stsb-minilm"
rows = list(csv.DictReader(open("../shared/data/stsb/test.tsv"), delimiter="\t", quoting=csv.QUOTE_NONE))
tok = load_tokenizer("packaged:minilm-l6")
lengths = token_lengths(tok, [r["sentence1"] for r in rows], 128, [r["sentence2"] for r in rows])
s = BenchSettings(batch_sizes=[1], realistic=True, threads=Threads(2, 1))
for name, path in [("winner", f"{R}/final/onnx/model_quantized.onnx"),
                   ("optimum-onnx-fused", f"{R}/03-bench/baselines/optimum-onnx-fused/model_optimized.onnx"),
                   ("optimum-int8-dynamic", f"{R}/03-bench/baselines/optimum-int8-dynamic/model_quantized.onnx")]:
    print(name, session_memory(path, s, 30522, lengths))
