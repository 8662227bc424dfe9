"""Model2Vec static embeddings distilled from the teacher: the baseline an edge developer picks today when a
transformer is too slow (issue 17). Run it in its own environment, since model2vec needs huggingface-hub >= 1.0,
which the transformers edgepress pins does not allow:

    python3 -m venv /tmp/m2v-venv && /tmp/m2v-venv/bin/pip install torch==2.13.0 'model2vec[distill,onnx,quantization]==0.10.0'
    /tmp/m2v-venv/bin/python experiments/model2vec_baseline.py TEACHER_FOLDER OUT [--pca-dims 256]

It writes OUT/model (model2vec's own folder) and OUT/onnx/model.onnx with its tokenizer (model2vec's ONNX export:
inputs input_ids + attention_mask, output the pooled embedding), which ``edgepress bench run`` then times beside
the other models like any foreign ONNX file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path, help="a sentence-transformers folder (the teacher)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--pca-dims", type=int, default=256)
    args = parser.parse_args()

    from model2vec.distill import distill
    from model2vec.onnx import export_model_to_onnx

    start = time.perf_counter()
    model = distill(model_name=str(args.teacher), pca_dims=args.pca_dims)
    distill_s = time.perf_counter() - start
    model.save_pretrained(str(args.out / "model"))
    export_model_to_onnx(model, args.out / "onnx", source_model_name=str(args.teacher))
    onnx_file = args.out / "onnx" / "model.onnx"
    facts = {"teacher": str(args.teacher), "pca_dims": args.pca_dims, "distill_seconds": round(distill_s, 1),
             "onnx": str(onnx_file), "onnx_mb": round(onnx_file.stat().st_size / 1e6, 2)}
    (args.out / "model2vec.json").write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
