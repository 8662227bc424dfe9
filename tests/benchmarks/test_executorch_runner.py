"""The ExecuTorch runner: the harness times a .pte like an .onnx file, and its task outputs match ONNX Runtime's."""

from __future__ import annotations

import pytest

from benchmarks.harness import BenchSettings, EvalSet, ModelSpec, benchmark
from benchmarks.report import validate_report
from benchmarks.runners import runner_class
from benchmarks.runners.base import Threads
from tests.benchmarks.helpers import tokenized

pytest.importorskip("executorch.runtime", reason="pip install 'edgepress[executorch]'")

HEADS = ("embedding", "classification", "token-classification")
FAST = dict(batch_sizes=[1, 4], seq_lens=[12], warmup=1, min_runs=3, min_seconds=0.0, rounds=1, threads=Threads(1, 1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """head -> the export folder of a tiny BERT with that head, written as model.onnx and model.pte."""
    from export.api import export_model
    from tests.tiny import make_tiny_model

    out = {}
    for head in HEADS:
        model = make_tiny_model(tmp_path_factory.mktemp(f"tiny-{head}"), "bert", head)
        res = export_model(model, tmp_path_factory.mktemp(f"export-{head}"), head, ["onnx", "executorch"])
        assert res["metrics"]["parity_executorch"]["enforced"] is True
        out[head] = res
    return out


@pytest.mark.parametrize("head", HEADS)
def test_the_harness_times_a_pte_beside_its_onnx_file(exported, head):
    files = exported[head]["files"]
    texts = ["a b c", "the quick brown fox jumps over the lazy dog", "short", "one more line of words here"]
    rep = benchmark([ModelSpec("onnx", files["onnx"], role="teacher"), ModelSpec("pte", files["executorch"])], head,
                    BenchSettings(**FAST), eval_set=EvalSet(texts, source="hand"), tokenizer_path=files["tokenizer"])
    validate_report(rep)
    onnx_e, pte_e = rep["models"]
    assert pte_e["status"] == "ok", pte_e["reason"]
    assert pte_e["format"] == "executorch" and pte_e["runtime"]["backend"] == "executorch"
    assert pte_e["runtime"]["threadpool_threads"] == 1  # Threads.intra_op resized ExecuTorch's pool
    assert [p["batch"] for p in pte_e["points"]] == [1, 4] and all(p["latency_ms"]["p50"] > 0 for p in pte_e["points"])
    assert pte_e["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    # no labels: the pte is scored by its fidelity to the teacher row (the ONNX file of the same model)
    assert pte_e["quality"]["value"] == pytest.approx(1.0, abs=1e-4), pte_e["quality"]


@pytest.mark.parametrize("head", HEADS)
def test_pte_outputs_match_onnx_runtime_at_several_batch_sizes_and_lengths(exported, head):
    from tests.benchmarks.helpers import assert_matches_onnx_runtime

    files = exported[head]["files"]
    pte = runner_class("executorch")(files["executorch"], head, Threads(1))
    ort = runner_class("onnx")(files["onnx"], head, Threads(1))
    pte.load()
    ort.load()
    assert pte.output_names == [o for o in ort.output_names]  # named like the ONNX file's head outputs
    # dynamic batch (<= 64) and sequence
    assert_matches_onnx_runtime(pte, ort, files["tokenizer"], [(1, 1), (3, 7), (2, 40), (64, 5)])


def test_feeds_past_the_exported_bounds_get_a_clear_error(exported):
    from compress.core.errors import EdgepressError

    files = exported["classification"]["files"]
    pte = runner_class("executorch")(files["executorch"], "classification", Threads(1))
    pte.load()
    assert pte.max_batch == 64
    feeds = tokenized(files["tokenizer"], ["a b"] * 65)
    with pytest.raises(EdgepressError, match=r"exported for batch <= 64 .* got batch 65"):
        pte.prepare(feeds)


def test_a_broken_pte_is_an_error_entry_naming_the_file(tmp_path):
    bad = tmp_path / "broken.pte"
    bad.write_bytes(b"not a program")
    rep = benchmark([ModelSpec("bad", bad)], "embedding", BenchSettings(**FAST))
    entry = rep["models"][0]
    assert entry["status"] == "error" and entry["format"] == "executorch"
    assert entry["reason"].startswith(f"ExecuTorch cannot load '{bad}'") and "\n" not in entry["reason"]


def test_session_memory_is_probed_for_every_runtime_file(exported, tmp_path):
    """One fresh process per file and batch size, with the runner that times it: .onnx, .pte and an OpenVINO IR."""
    files = exported["classification"]["files"]
    models = [ModelSpec("onnx", files["onnx"]), ModelSpec("pte", files["executorch"])]
    try:
        import openvino as ov
    except ImportError:
        ov = None
    if ov is not None:
        xml = tmp_path / "openvino_model.xml"
        ov.save_model(ov.convert_model(files["onnx"]), str(xml), compress_to_fp16=False)
        models.append(ModelSpec("ir", xml))
    settings = BenchSettings(**{**FAST, "session_memory": True})
    rep = benchmark(models, "classification", settings, tokenizer_path=files["tokenizer"])
    validate_report(rep)
    for e in rep["models"]:
        mem = e["session_memory"]
        assert e["status"] == "ok" and mem["process"] == "fresh", (e["name"], e["reason"], mem)
        assert [b["batch"] for b in mem["by_batch"]] == [1, 4] and mem["session_mb"] == mem["by_batch"][0]["session_mb"]
        assert 0 < mem["session_mb"] < 500, (e["name"], mem)
    assert [e["format"] for e in rep["models"]] == ["onnx", "executorch", "openvino"][:len(models)]
