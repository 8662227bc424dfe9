"""Session memory of a headline run's winner and its Optimum baselines at batch 1 only: the bench's probe
(benchmarks.memory, a fresh process per file), on the token lengths of the run's test split.

    python experiments/session_memory_batch1.py RUN_DIR TEST_TSV MAX_LENGTH TEXT_COLUMN [PAIR_COLUMN]
    e.g. /tmp/ep/runs/stsb-minilm ../shared/data/stsb/test.tsv 128 sentence1 sentence2
         /tmp/ep/runs/sst2-minilm ../shared/data/sst2/test.tsv 64 sentence
"""
import csv
import sys
from pathlib import Path

from benchmarks.feeds import token_lengths
from benchmarks.harness import BenchSettings
from benchmarks.memory import session_memory
from benchmarks.runners.base import Threads
from compress.models import load_tokenizer

run, tsv, max_length, column = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
pair_column = sys.argv[5] if len(sys.argv) > 5 else None
rows = list(csv.DictReader(open(tsv), delimiter="\t", quoting=csv.QUOTE_NONE))
tok = load_tokenizer("packaged:minilm-l6")
lengths = token_lengths(tok, [r[column] for r in rows], max_length,
                        [r[pair_column] for r in rows] if pair_column else None)
settings = BenchSettings(batch_sizes=[1], realistic=True, threads=Threads(2, 1))
bench = next(run.glob("*-bench"))
for name, path in [("winner", run / "final/onnx/model_quantized.onnx"),
                   ("optimum-onnx-fused", bench / "baselines/optimum-onnx-fused/model_optimized.onnx"),
                   ("optimum-int8-dynamic", bench / "baselines/optimum-int8-dynamic/model_quantized.onnx")]:
    print(name, session_memory(str(path), settings, 30522, lengths))
