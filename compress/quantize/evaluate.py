"""Scoring an ONNX model on the eval rows, relative to the fp32 model run on the same rows.

The metric and the fidelity are the task's own (``compress.tasks.scoring``, the names the bench report uses):

* embedding + sentence pairs with scores (STS): Spearman of cosine similarities vs the gold scores;
  fidelity ``fidelity_cosine``: mean cosine between quantized and fp32 sentence embeddings (fp32 = 1.0);
* classification: accuracy vs labels; fidelity ``top1_agreement`` (argmax agreement with fp32);
* regression: Spearman of predictions vs labels; fidelity ``fidelity_spearman`` (Spearman vs fp32's predictions);
* mlm: no task metric; fidelity ``top1_agreement`` (top-1 token agreement with fp32);
* token-classification: entity F1 (seqeval) of each word's tag (its first sub-token's argmax) vs the gold tags;
  fidelity ``word_agreement`` (per-word argmax agreement with fp32);
* question-answering: SQuAD F1 (0-100) of the answer text read from each question's windows' start/end logits
  vs the gold answers; fidelity ``answer_agreement``: share of questions whose answer text equals the fp32 model's.

``retention`` = metric / fp32 metric. When the fp32 metric is not meaningfully positive (an untrained
model), retention falls back to fidelity with fp32 and ``basis`` says so.

Every file is run through the benchmark runner of its format (``benchmarks.runners.runner_class``): ONNX files in
ONNX Runtime, and the export stage's runtime files (ExecuTorch, LiteRT, OpenVINO) in their own runtimes, so the
guard's INT8 files and the runtime files are scored by one code path on the same rows (``score_runtime``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import metrics as M
from benchmarks.evalset import EvalBatches, EvalSet
from benchmarks.sessions import input_names, open_session

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedTokenizerBase

    from compress.data.rows import TextData
    from compress.model.interface import ModelInterface
    from compress.tasks.spec import Gold

MIN_REFERENCE = 0.05  # below this share of a metric's full scale the fp32 metric is noise: use fidelity instead


def build_eval_set(tokenizer: "PreTrainedTokenizerBase", data: "TextData", task: str, onnx_path: Path,
                   max_length: int, rows: int, pooling: "ModelInterface | None" = None) -> EvalBatches:
    """The first ``rows`` eval rows tokenised in batches for the model's inputs (label names read before the cut);
    ``pooling``: the teacher's interface, how a file without ``sentence_embedding`` pools its token vectors."""
    names = input_names(open_session(onnx_path))
    ev = EvalSet.from_text_data(data).head(rows).batches(tokenizer, task, names, max_length)
    ev.pooling = pooling
    return ev


def _sentence_embedding(outputs: dict[str, "np.ndarray"], feed: dict[str, "np.ndarray"],
                        pooling: "ModelInterface | None" = None) -> "np.ndarray":
    """The file's ``sentence_embedding``, else its ``last_hidden_state`` pooled as ``pooling`` (the teacher's
    interface; mean when None) says."""
    import numpy as np

    from benchmarks.runners.base import pool_tokens

    if "sentence_embedding" in outputs:
        return outputs["sentence_embedding"].astype(np.float64)
    hidden = outputs.get("last_hidden_state")
    if hidden is None:
        raise ValueError(f"embedding model has neither sentence_embedding nor last_hidden_state: {list(outputs)}")
    return pool_tokens(hidden.astype(np.float32), feed["attention_mask"], pooling).astype(np.float64)


def _word_classes(logits: "np.ndarray", positions: list[list[int]]) -> "np.ndarray":
    """Argmax class of every word of a batch (its first sub-token), rows concatenated; -1 for truncated words."""
    import numpy as np

    from benchmarks.tags import word_argmax

    return np.concatenate(word_argmax(logits, positions) + [np.zeros(0, dtype=np.int64)])


def _answers(starts: list["np.ndarray"], ends: list["np.ndarray"], ev: EvalBatches) -> "np.ndarray":
    """Each question's answer text (object array, '' = no answer) from its windows' start/end logits."""
    import numpy as np

    from benchmarks.spans import predicted_answers

    texts = predicted_answers(ev.examples or [], ev.windows or {"example_index": [], "offset_mapping": []},
                              np.concatenate(starts), np.concatenate(ends), ev.max_answer_length, ev.null_threshold)
    return np.asarray(texts, dtype=object)


def open_runner(path: Path, task: str, fmt: str | None = None) -> Any:
    """The loaded benchmark runner of ``path``'s format (``fmt``, else read from the path) with the runtime's default
    threads, as the guard's ONNX Runtime session always had."""
    from benchmarks.runners import detect_format, runner_class

    runner = runner_class(fmt or detect_format(Path(path)), "cpu")(Path(path), task)
    runner.load()
    return runner


def run_model(path: Path, ev: EvalBatches, fmt: str | None = None) -> dict[str, "np.ndarray"]:
    """Outputs needed for scoring, concatenated over batches (token classification: one class per word; question
    answering: one answer text per question), from ``path`` run in the runner of its format (``fmt``)."""
    import numpy as np

    from benchmarks.spans import span_logits

    from compress.tasks import task_spec

    runner = open_runner(path, ev.task, fmt)
    kind = task_spec(ev.task).outputs  # answers | words | pooled | tokens | logits

    def tower(batches: list[dict[str, "np.ndarray"]]) -> dict[str, list]:
        out: dict[str, list] = {"emb": [], "logits": [], "mask": [], "start": [], "end": []}
        row = 0
        for feed in batches:
            res = runner.outputs(runner.prepare(feed))
            n = feed["input_ids"].shape[0]
            if kind == "answers":
                start, end = span_logits(res)
                out["start"].append(start.astype(np.float32))
                out["end"].append(end.astype(np.float32))
            elif kind == "words":
                out["logits"].append(_word_classes(res["logits"], (ev.positions or [])[row:row + n]))
            elif kind == "pooled":
                out["emb"].append(_sentence_embedding(res, feed, ev.pooling))
            elif kind == "tokens":
                logits = res["logits"]
                mask = feed["attention_mask"].astype(bool)
                out["logits"].append(logits.argmax(-1)[mask])
            else:
                out["logits"].append(res["logits"].astype(np.float64))
            row += n
        return out

    a = tower(ev.batches_a)
    result: dict[str, np.ndarray] = {}
    if kind == "answers":
        result["answers"] = _answers(a["start"], a["end"], ev)
    elif kind == "pooled":
        result["emb_a"] = np.concatenate(a["emb"])
        if ev.batches_b is not None:
            result["emb_b"] = np.concatenate(tower(ev.batches_b)["emb"])
    else:
        result["logits"] = np.concatenate(a["logits"])
    return result


def _outputs(out: dict[str, "np.ndarray"]) -> dict[str, "np.ndarray"]:
    """``run_model``'s outputs in the scorer's terms (``compress.tasks.scoring``): "a" per row, "b" pairs' 2nd side."""
    first = next(out[k] for k in ("emb_a", "logits", "answers") if k in out)
    return {"a": first, **({"b": out["emb_b"]} if "emb_b" in out else {})}


def gold_of(ev: EvalBatches) -> "Gold":
    """What the eval rows know: labels, pairs, tags with word counts, or the QA examples with their answers."""
    from compress.tasks.spec import Gold

    return Gold(labels=ev.labels if ev.answers is None else ev.answers, pairs=ev.batches_b is not None,
                tags=ev.tags, word_counts=None if ev.positions is None else [len(p) for p in ev.positions],
                label_names=ev.label_names, examples=ev.examples)


def task_metric(out: dict[str, "np.ndarray"], ev: EvalBatches) -> tuple[str, float] | None:
    """The task metric against gold labels, or None when the eval rows have none."""
    from compress.tasks.scoring import metric

    got = metric(ev.task, _outputs(out), gold_of(ev))
    return None if got is None else (got.metric, got.value)


def fidelity(out: dict[str, "np.ndarray"], ref: dict[str, "np.ndarray"], ev: EvalBatches) -> tuple[str, float]:
    """Agreement with the fp32 outputs on the same rows (the task's one fidelity name)."""
    from compress.tasks.scoring import fidelity as task_fidelity

    return task_fidelity(ev.task, _outputs(out), _outputs(ref))


def set_reference(ev: EvalBatches, fp32_path: Path) -> dict[str, Any]:
    """Run the fp32 model once; later scores are relative to it."""
    out = run_model(fp32_path, ev)
    metric = task_metric(out, ev)
    ev.reference = {"outputs": out, "metric": metric}
    summary = {"rows": ev.rows, "kind": ev.kind, "source": ev.source}
    if metric is not None:
        summary[metric[0]] = round(metric[1], 6)
    return summary


def score(path: Path, ev: EvalBatches, fmt: str | None = None) -> dict[str, Any]:
    """Metric, fidelity and retention of ``path`` (run in the runner of ``fmt``) relative to the fp32 reference on
    ``ev``."""
    if not ev.reference:
        raise RuntimeError("set_reference must run before score")
    return relative_scores(run_model(path, ev, fmt), ev)


def relative_scores(out: dict[str, "np.ndarray"], ev: EvalBatches) -> dict[str, Any]:
    """``score`` of outputs already run: the fidelity under its name, the metric, fp32's and the retention."""
    ref_out, ref_metric = ev.reference["outputs"], ev.reference["metric"]
    fid_name, fid = fidelity(out, ref_out, ev)
    result: dict[str, Any] = {fid_name: round(fid, 6)}
    metric = task_metric(out, ev)
    from compress.tasks import task_spec

    floor = MIN_REFERENCE * task_spec(ev.task).full_scale
    ret = M.retention(metric[1], ref_metric[1], floor) if metric and ref_metric else None
    if ret is not None:
        result[metric[0]] = round(metric[1], 6)
        result["fp32_" + metric[0]] = round(ref_metric[1], 6)
        result["retention"] = round(ret, 6)
        result["basis"] = metric[0]
    else:
        if metric is not None:
            result[metric[0]] = round(metric[1], 6)
        result["retention"] = round(fid, 6)
        result["basis"] = fid_name
    return result


@dataclass(frozen=True)
class RuntimeFile:
    """A runtime file the export stage wrote: its format (executorch, litert, openvino, coreml), precision, path."""

    format: str
    precision: str
    path: Path


def score_runtime(file: RuntimeFile, ev: EvalBatches, floor: float, report_dir: Path) -> dict[str, Any]:
    """One runtime file scored as the guard scores a quantized file (``score``, its format's runner) on the same rows:
    the task metric, retention against the fp32 ONNX reference, the fidelity, and whether it meets ``floor``. A file
    no runner here can run (Core ML on Linux, a runtime not installed) or that its runtime refuses is listed with
    ``scored: false`` and the reason. ``path`` is written relative to ``report_dir``."""
    from benchmarks.runners import skip_reason
    from compress.core.errors import EdgepressError
    from compress.tasks import task_spec

    entry: dict[str, Any] = {"format": file.format, "precision": file.precision,
                             "path": os.path.relpath(Path(file.path), Path(report_dir))}
    reason = skip_reason(file.format, "cpu")
    if reason is None:
        try:
            out = run_model(Path(file.path), ev, file.format)
        except EdgepressError as exc:
            reason = f"{file.format} runtime failed on the eval rows: {exc}"
        except Exception as exc:  # noqa: BLE001 - a runtime's own failure (compile, invoke) is a row, not a crash
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            reason = f"{file.format} runtime failed on the eval rows: {type(exc).__name__}: {first}"
    if reason is not None:
        return {**entry, "scored": False, "reason": reason}
    got = relative_scores(out, ev)
    fid_name = task_spec(ev.task).fidelity
    metric = task_metric(out, ev)
    ref_metric = ev.reference["metric"]
    return {**entry, "scored": True,
            "metric": None if metric is None else {"name": metric[0], "value": round(metric[1], 6),
                                                   "fp32_value": None if ref_metric is None else round(ref_metric[1], 6)},
            "retention": got["retention"], "basis": got["basis"],
            "fidelity": {"name": fid_name, "value": got[fid_name]},
            "retention_floor": floor, "meets_floor": bool(got["retention"] >= floor)}
