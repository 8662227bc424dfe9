"""Measure export parity and file sizes on the packaged MiniLM (truncated to 3 layers as a student stand-in).

    python experiments/export_measure.py OUT_DIR [--formats onnx ort ptl pte] [--keep-layers 0 2 5]
Writes OUT_DIR/student (the truncated model), OUT_DIR/bundle (the export) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for a checkout that is not installed


def truncated_minilm(out: Path, keep: list[int]) -> Path:
    """Save all-MiniLM-L6-v2 with only encoder layers ``keep`` (a stand-in until a distilled student exists)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from compress.models import resolve_model_path

    src = resolve_model_path("packaged:minilm-l6")
    model = AutoModel.from_pretrained(src)
    model.encoder.layer = torch.nn.ModuleList([model.encoder.layer[i] for i in keep])
    model.config.num_hidden_layers = len(keep)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build the stand-in student, export it to the asked formats as a bundle, print parity and sizes."""
    from export.api import export_model
    from export.mobile import executorch_available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--formats", nargs="+", default=["onnx", "ort", "ptl", "torchscript", "pte"])
    parser.add_argument("--keep-layers", nargs="+", type=int, default=[0, 2, 5])
    args = parser.parse_args(argv)
    formats = list(args.formats)
    if "pte" in formats and not executorch_available()[0]:
        print(f"skipping pte: {executorch_available()[1]}")
        formats.remove("pte")
    student = truncated_minilm(args.out / "student", args.keep_layers)
    res = export_model(student, args.out / "bundle", "embedding", formats, optimize=True, bundle=True, overwrite=True)
    m = res["metrics"]
    rows = ["| file | format | size (MB) | max abs diff | min cosine |", "|---|---|---:|---:|---:|"]
    for model in res["models"]:
        size = m["size_bytes"][model["file"]] / 1e6
        rows.append(f"| {model['file']} | {model['format']} | {size:.2f} | {model['parity']['max_abs_diff']:.2e} | "
                    f"{model['parity']['min_cosine']:.8f} |")
    print("\n".join(rows))
    print("fused ops:", json.dumps(m["fused_ops"]))
    (args.out / "metrics.json").write_text(json.dumps(m, indent=2, default=str))
    return res


if __name__ == "__main__":
    main()
