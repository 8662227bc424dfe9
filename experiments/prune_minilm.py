"""Prune the 3-layer MiniLM student on STS-B, recover by distillation, compare quality and CPU latency.

Student: packaged all-MiniLM-L6-v2 truncated to layers [0, 2, 5] (stand-in for the distilled student).
Metric: Spearman of cosine similarities of mean-pooled embeddings on STS-B test. Recovery: distill the
pruned model from the unpruned student on STS-B train sentences. Latency: PyTorch, batch 1, both models
timed alternately in one process, median of ``--runs`` calls each.

    python experiments/prune_minilm.py --head-ratio 0.4 --ffn-ratio 0.4 --out runs/prune_minilm.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for a checkout that is not installed


DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb"


def latency_pair(a, b, enc: dict, runs: int, warmup: int = 10) -> tuple[float, float]:
    """Median seconds per forward of ``a`` and ``b`` on ``enc``, timed alternately (same noise for both)."""
    import torch

    ta, tb = [], []
    with torch.inference_mode():
        for _ in range(warmup):
            a(**enc)
            b(**enc)
        for i in range(runs):
            for model, acc in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
                t0 = time.perf_counter()
                model(**enc)
                acc.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print/write its results."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head-ratio", type=float, default=0.4)
    ap.add_argument("--ffn-ratio", type=float, default=0.4)
    ap.add_argument("--importance", default="gradient", choices=["l1", "l2", "taylor", "gradient"])
    ap.add_argument("--scope", default="uniform", choices=["uniform", "global"])
    ap.add_argument("--round-to", type=int, default=8)
    ap.add_argument("--no-recovery", action="store_true")
    ap.add_argument("--recovery-epochs", type=float, default=1.0)
    ap.add_argument("--recovery-max-steps", type=int, default=-1)
    ap.add_argument("--recovery-lr", type=float, default=1e-4)
    ap.add_argument("--runs", type=int, default=100, help="latency calls per model (median)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for latency")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    from compress.data import load_text_data
    from compress.distill.student import student_from_teacher
    from compress.models import load_model, load_tokenizer
    from compress.prune.api import prune_model
    from compress.prune.config import PruneConfig

    if not (args.data / "test.tsv").is_file():
        raise SystemExit(f"STS-B not found at {args.data} (needs train.tsv and test.tsv)")
    torch.manual_seed(args.seed)
    teacher = load_model("packaged:minilm-l6", "embedding")
    tok = load_tokenizer("packaged:minilm-l6")
    student, picked = student_from_teacher(teacher, layers=[0, 2, 5])
    del teacher
    unpruned = copy.deepcopy(student).eval()
    test = load_text_data(str(args.data / "test.tsv"), "sentence1", "sentence2", "score", task="regression")
    train = load_text_data(str(args.data / "train.tsv"), "sentence1", "sentence2")
    cfg = PruneConfig.model_validate({
        "head_ratio": args.head_ratio, "ffn_ratio": args.ffn_ratio, "importance": args.importance,
        "scope": args.scope, "round_to": args.round_to,
        "recovery": {"enabled": not args.no_recovery, "epochs": args.recovery_epochs,
                     "max_steps": args.recovery_max_steps, "learning_rate": args.recovery_lr},
    })
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as wd:
        model, rep = prune_model(student, tok, cfg, train, "embedding", eval_data=test, work_dir=Path(wd),
                                 seed=args.seed)
    wall = time.perf_counter() - t0

    torch.set_num_threads(args.threads)
    enc = dict(tok(test.texts[0], return_tensors="pt"))
    t_full, t_pruned = latency_pair(unpruned, model.eval(), enc, args.runs)
    q = rep.quality
    result = {
        "student_layers": picked, "config": cfg.model_dump(mode="json"),
        "spearman_unpruned": q["unpruned"]["value"], "spearman_pruned": q["pruned"]["value"],
        "spearman_recovered": q.get("recovered", {}).get("value"),
        "retention": q["retention"], "retention_without_recovery": q["pruned"]["value"] / q["unpruned"]["value"],
        "heads_after": rep.heads_after, "ffn_after": rep.ffn_after,
        "params_before": rep.params_before, "params_after": rep.params_after,
        "encoder_params_before": rep.encoder_params_before, "encoder_params_after": rep.encoder_params_after,
        "macs_before": rep.macs_before, "macs_after": rep.macs_after,
        "latency_ms_unpruned": t_full * 1e3, "latency_ms_pruned": t_pruned * 1e3,
        "latency_ratio": t_pruned / t_full, "latency_runs": args.runs, "threads": args.threads,
        "latency_tokens": int(enc["input_ids"].shape[1]), "recovery": rep.recovery, "wall_seconds": round(wall, 1),
    }
    print(json.dumps(result, indent=2, default=float))
    print(f"\n| model | heads/layer | FFN | encoder params | MACs (seq 128) | STS-B Spearman | latency ms (b=1) |\n"
          f"| --- | --- | --- | --- | --- | --- | --- |\n"
          f"| unpruned | {rep.heads_before} | {rep.ffn_before[0]} | {rep.encoder_params_before:,} | "
          f"{rep.macs_before / 1e6:.0f} M | {result['spearman_unpruned']:.4f} | {t_full * 1e3:.2f} |\n"
          f"| pruned | {rep.heads_after} | {rep.ffn_after[0]} | {rep.encoder_params_after:,} | "
          f"{rep.macs_after / 1e6:.0f} M | {result['spearman_pruned']:.4f} | {t_pruned * 1e3:.2f} |")
    if result["spearman_recovered"] is not None:
        print(f"| pruned + recovery | | | | | {result['spearman_recovered']:.4f} | |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()
