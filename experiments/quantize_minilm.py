"""Benchmark: INT8 quantization of a 3-layer MiniLM stand-in student on STS-B (Spearman, latency).

The student is the packaged all-MiniLM-L6-v2 truncated to layers [0, 2, 5] (no distillation), exported
to ONNX (torch.onnx.export, dynamo=False, outputs last_hidden_state + sentence_embedding), then quantized
by ``compress.quantize.api.quantize_onnx`` with each method. Quality is the Spearman correlation of cosine
similarities with the gold scores on /work/shared/data/stsb/test.tsv; latency ratios are medians of
interleaved runs measured in the same process.

    python experiments/quantize_minilm.py --out runs/bench-quantize
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for a checkout that is not installed


DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb"


def build_student(out_dir: Path, layers: list[int]) -> Path:
    """Truncate the packaged MiniLM to ``layers`` and save it (with its tokenizer)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from compress.models import resolve_model_path

    src = resolve_model_path("packaged:minilm-l6")
    model = AutoModel.from_pretrained(src).eval()
    model.encoder.layer = torch.nn.ModuleList([model.encoder.layer[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(src).save_pretrained(out_dir)
    return out_dir


def export_embedding_onnx(model_dir: Path, path: Path) -> Path:
    """ONNX with the architecture.md embedding interface (mean pooling inside the graph)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class Wrapper(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return hidden, (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(["a short sentence", "a somewhat longer sentence for export"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes.update(last_hidden_state={0: "batch", 1: "sequence"}, sentence_embedding={0: "batch"})
    torch.onnx.export(Wrapper(AutoModel.from_pretrained(model_dir).eval()), tuple(enc[n] for n in names), str(path),
                      input_names=names, output_names=["last_hidden_state", "sentence_embedding"], dynamic_axes=axes,
                      opset_version=17, dynamo=False)
    return path


def qat_source(student: Path, train):
    """QAT against the packaged 6-layer teacher on STS-B train sentences, STS-B distillation loss mix."""
    from compress.data import TextData
    from compress.distill.config import DistillConfig
    from compress.quantize.qat import QATSource

    texts = list(dict.fromkeys(train.texts + (train.pairs or [])))
    loss = {"cos": 1.0, "embed_mse": 1.0, "embed_cos": 1.0}
    return QATSource(student, "packaged:minilm-l6", TextData(texts, source=train.source),
                     DistillConfig.model_validate({"loss": loss}), seed=42)


def main() -> None:
    """Run fp32 vs dynamic/static/NNCF INT8 and write results.json + a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quantize"))
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 2, 5])
    parser.add_argument("--student", type=Path, default=None,
                        help="a distilled student folder (e.g. runs/stsb-distill/01-distill/model) instead of --layers")
    parser.add_argument("--qat-steps", type=int, default=300, help="QAT fine-tune steps (0: no QAT row)")
    parser.add_argument("--eval-rows", type=int, default=1500, help="STS-B test pairs (1500 = all)")
    parser.add_argument("--calibration-rows", type=int, default=128)
    parser.add_argument("--runs", type=int, default=40, help="timed runs per model and shape")
    parser.add_argument("--optimize-graph", action="store_true", help="ORT BERT fusions before quantizing")
    args = parser.parse_args()

    from benchmarks.feeds import tokenize_feeds
    from benchmarks.sessions import input_names, open_session
    from compress.data import load_text_data
    from compress.quantize.api import quantize_onnx
    from compress.quantize.config import QuantizeConfig
    from compress.quantize.latency import compare_latency
    from transformers import AutoTokenizer

    if not (DATA / "test.tsv").is_file():
        raise SystemExit(f"STS-B not found at {DATA} (see ../shared/data/README.md)")
    args.out.mkdir(parents=True, exist_ok=True)
    student = args.student or build_student(args.out / "student", args.layers)
    onnx_path = export_embedding_onnx(student, args.out / "model.onnx")
    tok = AutoTokenizer.from_pretrained(student)
    test = load_text_data(str(DATA / "test.tsv"), "sentence1", "sentence2", "score", task="regression", limit=args.eval_rows)
    train = load_text_data(str(DATA / "train.tsv"), "sentence1", "sentence2", "score", task="regression")
    results: dict[str, Any] = {"command": "python experiments/quantize_minilm.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if not isinstance(v, bool) and v is not None) + (" --optimize-graph" if args.optimize_graph else "")}

    # 1) the default config (dynamic only) timed end to end, guard included
    start = time.perf_counter()
    default = quantize_onnx(onnx_path, args.out / "default", None, tok, calibration=train, eval_data=test,
                            config=QuantizeConfig(), name_prefix="student")
    results["default_config_seconds"] = round(time.perf_counter() - start, 2)
    results["default_config_retention"] = default["methods"]["dynamic"]["retention"]

    # 2) every INT8 method on all eval pairs
    methods = ["dynamic", "static", "nncf"] + (["qat"] if args.qat_steps else [])
    cfg = QuantizeConfig.model_validate({"methods": methods, "optimize_graph": args.optimize_graph,
                                         "calibration_samples": args.calibration_rows,
                                         "qat": {"only_if_ptq_fails": False, "max_steps": max(1, args.qat_steps)},
                                         "guard": {"eval_samples": args.eval_rows}, "latency": {"runs": 5}})
    report = quantize_onnx(onnx_path, args.out / "int8", None, tok, calibration=train, eval_data=test, config=cfg,
                           name_prefix="student", qat_source=qat_source(student, train))
    baseline = args.out / "int8" / "model.opt.onnx" if args.optimize_graph else onnx_path
    names = input_names(open_session(baseline))
    feeds = {f"{b}x128": tokenize_feeds(tok, (test.texts * b)[:b], None, 128, names, pad_to=128) for b in (8, 1)}
    rows = [{"method": "fp32", "spearman": report["eval"]["spearman"], "retention": 1.0}]
    for method, rec in report["methods"].items():
        best = rec["attempts"][rec["chosen"]]
        row = {"method": method, "spearman": best.get("spearman"), "retention": rec["retention"],
               "attempts": [(a["label"], a["retention"]) for a in rec["attempts"]], "size_mb": rec["size_mb"],
               "chosen": best["label"]}
        for shape, feed in feeds.items():
            lat = compare_latency(baseline, args.out / "int8" / rec["path"], feed, runs=args.runs, warmup=3)
            row[f"fp32_ms_{shape}"], row[f"int8_ms_{shape}"], row[f"ratio_{shape}"] = lat["fp32_ms"], lat["quant_ms"], lat["ratio"]
        rows.append(row)
    results.update(cpu=report["cpu"], int8_recipe=report["int8_recipe"], graph=report["graph"], rows=rows,
                   fp32_size_mb=report["fp32_size_mb"], calibration=report["calibration"])
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))

    lines = ["| variant | guard attempt kept | Spearman x100 | retention | size MB | int8/fp32 latency 8x128 | "
             "int8/fp32 latency 1x128 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["method"] == "fp32":
            lines.append(f"| fp32 | – | {100 * r['spearman']:.2f} | 100.0 % | {report['fp32_size_mb']:.1f} | 1.00 | 1.00 |")
            continue
        lines.append(f"| {r['method']} | {r['chosen']} | {100 * r['spearman']:.2f} | {100 * r['retention']:.1f} % | {r['size_mb']:.1f} | "
                     f"{r['ratio_8x128']:.2f} ({r['int8_ms_8x128']:.1f} vs {r['fp32_ms_8x128']:.1f} ms) | "
                     f"{r['ratio_1x128']:.2f} ({r['int8_ms_1x128']:.1f} vs {r['fp32_ms_1x128']:.1f} ms) |")
    table = "\n".join(lines)
    (args.out / "results.md").write_text(table + "\n")
    print(table)
    print(json.dumps({k: results[k] for k in ("default_config_seconds", "default_config_retention", "int8_recipe")}, default=str))


if __name__ == "__main__":
    main()
