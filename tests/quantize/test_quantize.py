"""Quantization: every method runs in ONNX Runtime close to fp32; calibration, guard and fallbacks are real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compress.data.rows import TextData
from compress.quantize.api import quantize_onnx
from compress.quantize.calibration import texts_fingerprint
from compress.quantize.config import QuantizeConfig
from compress.quantize.cpu import parse_cpuinfo, recommend_int8
from tests.quantize.helpers import TEXTS, export_tiny, mean_cosine, run_onnx

FAST = {"latency": {"runs": 3, "warmup": 1, "batch_size": 2, "seq_len": 16}, "guard": {"eval_samples": 32}}


@pytest.fixture
def tiny_embedding(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir("bert", "embedding")
    return export_tiny(model_dir, "embedding", tmp_path / "model.onnx"), AutoTokenizer.from_pretrained(model_dir)


def _cfg(**kw) -> QuantizeConfig:
    data = json.loads(json.dumps(FAST))
    for key, value in kw.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return QuantizeConfig.model_validate(data)


@pytest.fixture
def unreachable_floor(monkeypatch):
    """Every guard attempt scored a hair under fp32 (order kept), so guard.retention_floor 1.0 walks every fallback:
    on these tiny models even float embeddings + head round to a retention of 1.0 (and floors above 1 are refused)."""
    import compress.quantize.guard as guard

    real = guard.score

    def score(dst, ev):
        result = dict(real(dst, ev))
        result["retention"] = result["retention"] * (1 - 1e-6)
        return result

    monkeypatch.setattr(guard, "score", score)


def _corpus(n: int = 48) -> TextData:
    from compress.data.rows import builtin_pydoc_sentences

    return TextData(builtin_pydoc_sentences()[:n], source="builtin:pydoc")


@pytest.mark.parametrize("method", ["dynamic", "static", "nncf", "fp16", "int4"])
def test_method_output_close_to_fp32(tiny_embedding, tmp_path, method):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", [method], tok, calibration=_corpus(), eval_data=_corpus(),
                           config=_cfg(calibration_samples=16))
    rec = report["methods"][method]
    out_file = tmp_path / "out" / rec["path"]
    assert out_file.is_file() and rec["path"].startswith("model.")
    ref = run_onnx(onnx_path, tok, TEXTS, "sentence_embedding")
    got = run_onnx(out_file, tok, TEXTS, "sentence_embedding")
    assert got.shape == ref.shape
    assert mean_cosine(ref, got) >= 0.99
    assert rec["attempts"][0]["fidelity_cosine"] >= 0.99
    assert rec["latency"]["fp32_ms"] > 0 and rec["latency"]["quant_ms"] > 0
    assert rec["latency"]["ratio"] == pytest.approx(rec["latency"]["quant_ms"] / rec["latency"]["fp32_ms"], rel=1e-2)
    assert not (tmp_path / "out" / "_work").exists()


def test_method_changes_the_graph(tiny_embedding, tmp_path):
    import onnx

    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic", "static", "int4", "fp16"], tok,
                           calibration=_corpus(), config=_cfg(calibration_samples=8))
    ops = {m: {n.op_type for n in onnx.load(str(tmp_path / "out" / r["path"])).graph.node}
           for m, r in report["methods"].items()}
    assert "DynamicQuantizeLinear" in ops["dynamic"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops["static"]
    assert "MatMulNBits" in ops["int4"]
    fp16 = onnx.load(str(tmp_path / "out" / report["methods"]["fp16"]["path"]))
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in fp16.graph.initializer) > 10
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    sizes = {m: r["size_mb"] for m, r in report["methods"].items()}
    assert sizes["int4"] < report["fp32_size_mb"] and sizes["fp16"] < report["fp32_size_mb"]


def test_optimized_graph_fused_then_quantized(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic", "static"], tok, calibration=_corpus(),
                           config=_cfg(optimize_graph=True, calibration_samples=8))
    assert report["graph"]["fused_ops"]["Attention"] == 2  # both layers fused
    assert "SkipLayerNormalization" not in report["graph"]["fused_ops"]
    assert report["graph"]["fused_ops"]["residual_sums"] >= 4  # two a layer
    ref = run_onnx(onnx_path, tok, TEXTS, "sentence_embedding")
    for method in ("dynamic", "static"):
        got = run_onnx(tmp_path / "out" / report["methods"][method]["path"], tok, TEXTS, "sentence_embedding")
        assert mean_cosine(ref, got) >= 0.99
        assert "SkipLayerNormalization" not in _ops_after_session_fusions(tmp_path / "out" / report["methods"][method]["path"])
    assert report["variants"][0]["name"] == "model-fp32-opt"


def _ops_after_session_fusions(path: Path) -> set[str]:
    """The op types of ``path`` after ONNX Runtime's own load-time fusions (the extended level, where
    SkipLayerNormalization and BiasGelu are fused)."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(path.with_suffix(".session.onnx"))
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return {n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node}


def test_slow_cpu_fusions_on_request(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic"], tok, calibration=_corpus(),
                           config=_cfg(optimize_graph=True, slow_cpu_fusions=True))
    assert report["graph"]["fused_ops"]["SkipLayerNormalization"] == 4
    assert "residual_sums" not in report["graph"]["fused_ops"]
    assert "SkipLayerNormalization" in _ops_after_session_fusions(tmp_path / "out" / report["methods"]["dynamic"]["path"])


def test_calibration_reads_the_given_rows(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    data_file = tmp_path / "calib.tsv"
    rows = TEXTS[:7]
    data_file.write_text("sentence\tlabel\n" + "".join(f"{t}\t1\n" for t in rows))
    from compress.data.rows import load_text_data

    calib = load_text_data(str(data_file), "sentence")
    report = quantize_onnx(onnx_path, tmp_path / "out", ["static"], tok, calibration=calib, eval_data=_corpus(),
                           config=_cfg(calibration_samples=100))
    cal = report["calibration"]
    assert cal["rows"] == 7 and cal["source"] == str(data_file)
    assert cal["fingerprint"] == texts_fingerprint(rows)
    assert report["methods"]["static"]["calibration_rows_yielded"] == 7  # the ORT reader handed out every row once
    n_tokens = sum(len(tok(t)["input_ids"]) for t in rows)
    assert cal["tokens"] == n_tokens


def test_calibration_limit_and_pairs_for_embeddings(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    calib = TextData(TEXTS[:4], pairs=TEXTS[4:8], source="pairs")
    report = quantize_onnx(onnx_path, tmp_path / "out", ["static"], tok, calibration=calib, config=_cfg(calibration_samples=6))
    # an embedding model encodes each sentence of a pair on its own: 8 sentences, first 6 used
    assert report["calibration"]["fingerprint"] == texts_fingerprint([TEXTS[0], TEXTS[4], TEXTS[1], TEXTS[5], TEXTS[2], TEXTS[6]])
    assert report["methods"]["static"]["calibration_rows_yielded"] == 6


def test_impossible_floor_walks_every_fallback(tiny_embedding, tmp_path, unreachable_floor):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["static"], tok, calibration=_corpus(16), eval_data=_corpus(),
                           config=_cfg(calibration_samples=8, guard={"retention_floor": 1.0, "sensitivity_samples": 16}))
    rec = report["methods"]["static"]
    labels = [a["label"] for a in rec["attempts"]]
    # size-neutral fallbacks first, blocks kept in float last
    assert labels == ["base", "per-channel weights", "attention MatMuls in float", "calibration entropy",
                      "calibration percentile", "float embeddings+head", "float 1 most sensitive layer(s)"]
    assert all(0.5 < a["retention"] <= 1.0 + 1e-6 and a["passed"] is False for a in rec["attempts"])
    assert rec["meets_floor"] is False and any("floor" in f for f in rec["flags"])
    assert rec["chosen"] == max(range(len(labels)), key=lambda i: rec["attempts"][i]["retention"])
    assert set(rec["layer_sensitivity"]) == {"layer.0", "layer.1"}
    last = rec["attempts"][-1]["settings"]
    assert last["per_channel"] is True and last["calibration"] == "percentile" and last["weight_matmuls_only"] is True
    assert "embeddings" in last["float_blocks"] and "head" in last["float_blocks"]
    assert report["recommended"]["variant"] == "fp32"


def test_guard_stops_at_first_passing_attempt(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic"], tok, eval_data=_corpus(),
                           config=_cfg(guard={"retention_floor": 0.9}))
    rec = report["methods"]["dynamic"]
    assert len(rec["attempts"]) == 1 and rec["meets_floor"] is True and rec["retention"] >= 0.9


def test_classification_argmax_mostly_kept(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir("bert", "classification")
    onnx_path = export_tiny(model_dir, "classification", tmp_path / "cls.onnx")
    tok = AutoTokenizer.from_pretrained(model_dir)
    texts = _corpus(64).texts
    labels = [int(i % 2) for i in range(len(texts))]
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic", "static"], tok, calibration=_corpus(16),
                           eval_data=TextData(texts, labels=labels, source="labelled"), task="classification",
                           config=_cfg(calibration_samples=8, guard={"eval_samples": 64}))
    ref = run_onnx(onnx_path, tok, texts, "logits").argmax(-1)
    for method in ("dynamic", "static"):
        rec = report["methods"][method]
        got = run_onnx(tmp_path / "out" / rec["path"], tok, texts, "logits").argmax(-1)
        assert np.mean(got == ref) >= 0.8
        assert 0.0 <= rec["attempts"][0]["top1_agreement"] <= 1.0
    assert report["eval"]["kind"] == "classification" and 0.0 <= report["eval"]["accuracy"] <= 1.0


@pytest.mark.parametrize(("flags", "arch", "isa", "reduce", "act"), [
    ("fpu sse4_2 avx avx2 fma", "x86_64", "avx2", True, "quint8"),
    ("sse4_2 avx2 avx512f avx512bw", "x86_64", "avx512", True, "quint8"),
    ("avx2 avx512f avx512_vnni", "x86_64", "avx512-vnni", False, "quint8"),
    ("avx2 avx_vnni", "x86_64", "avx-vnni", False, "quint8"),
    ("avx2 avx512f avx512_vnni amx_tile amx_int8", "x86_64", "amx", False, "quint8"),
])
def test_cpu_recipe_x86(flags, arch, isa, reduce, act):
    cpu = parse_cpuinfo(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n", arch)
    recipe = recommend_int8(cpu)
    assert (cpu.isa, recipe.reduce_range, recipe.activation_type, recipe.weight_type) == (isa, reduce, act, "qint8")
    assert cpu.model == "Test CPU"


def test_cpu_recipe_arm():
    cpu = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 asimddp\n", "aarch64")
    recipe = recommend_int8(cpu)
    assert cpu.isa == "arm-dotprod" and recipe.activation_type == "qint8" and recipe.reduce_range is False
    plain = recommend_int8(parse_cpuinfo("Features\t: fp asimd\n", "aarch64"))
    assert plain.activation_type == "quint8"


def test_report_records_cpu_choice_and_overrides(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic"], tok, eval_data=_corpus(),
                           config=_cfg(reduce_range=False, weight_type="quint8"))
    settings = report["methods"]["dynamic"]["attempts"][0]["settings"]
    assert settings["reduce_range"] is False and settings["weight_type"] == "quint8"
    assert report["cpu"]["isa"] in {"avx2", "avx512", "avx512-vnni", "avx-vnni", "amx", "arm-dotprod", "arm-neon", "sse", "unknown"}
    auto = quantize_onnx(onnx_path, tmp_path / "out2", ["dynamic"], tok, eval_data=_corpus(), config=_cfg())
    assert auto["methods"]["dynamic"]["attempts"][0]["settings"]["reduce_range"] == auto["int8_recipe"]["reduce_range"]
    saved = json.loads((tmp_path / "out2" / "quantize_report.json").read_text())
    assert saved["methods"]["dynamic"]["retention"] == auto["methods"]["dynamic"]["retention"]


def test_config_round_trip_and_unknown_key():
    from pydantic import ValidationError

    cfg = QuantizeConfig(methods=["static", "nncf"], static={"calibration_method": "entropy"}, guard={"retention_floor": 0.98})
    again = QuantizeConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg and again.static.calibration_method == "entropy" and again.guard.retention_floor == 0.98
    with pytest.raises(ValidationError):
        QuantizeConfig.model_validate({"methods": ["dynamic"], "retention_flor": 0.9})
    with pytest.raises(ValidationError):
        QuantizeConfig.model_validate({"methods": ["awq"]})


def test_static_weight_matmuls_only_leaves_attention_matmuls_float(tiny_embedding, tmp_path):
    """The 'attention MatMuls in float' fallback: QDQ only on MatMuls whose second input is a weight."""
    import onnx

    from benchmarks.sessions import input_names, open_session
    from compress.quantize.calibration import TextCalibrationFeeds, calibration_texts
    from compress.quantize.graph import prepare_for_quantization
    from compress.quantize.methods import Settings, quantize_static

    onnx_path, tok = tiny_embedding
    prepared = tmp_path / "prepared.onnx"
    prepare_for_quantization(onnx_path, prepared)
    texts, pairs = calibration_texts(_corpus(8), "embedding", 8)
    feeds = TextCalibrationFeeds(tok, texts, pairs, input_names(open_session(prepared)), 32, "test")

    def activation_matmuls_quantized(weight_only: bool) -> int:
        dst = tmp_path / f"static-{weight_only}.onnx"
        quantize_static(prepared, dst, Settings("static", weight_matmuls_only=weight_only), [], feeds, 99.999,
                        tmp_path / f"cache-{weight_only}")
        graph = onnx.load(str(dst)).graph
        producers = {o: n.op_type for n in graph.node for o in n.output}
        weights = {i.name for i in graph.initializer}
        count = 0
        for n in graph.node:  # a quantized activation x activation MatMul reads two DequantizeLinear outputs
            if n.op_type == "MatMul" and all(producers.get(x) == "DequantizeLinear" for x in n.input):
                dq_inputs = [next(m for m in graph.node if n_in in m.output).input[0] for n_in in n.input]
                count += not any(d in weights for d in dq_inputs)
        return count

    assert activation_matmuls_quantized(False) == 4  # QK^T and PV in each of the 2 layers
    assert activation_matmuls_quantized(True) == 0


def _qat_source(model_dir: Path):
    from compress.distill.config import DistillConfig
    from compress.quantize.qat import QATSource

    return QATSource(model_dir, str(model_dir), _corpus(), DistillConfig(), seed=0)


@pytest.fixture
def tiny_student(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    model_dir = tiny_model_dir("bert", "embedding")
    return model_dir, export_tiny(model_dir, "embedding", tmp_path / "model.onnx"), AutoTokenizer.from_pretrained(model_dir)


def test_qat_trains_fake_quantized_student_and_writes_qdq_onnx(tiny_student, tmp_path):
    import onnx

    model_dir, onnx_path, tok = tiny_student
    report = quantize_onnx(onnx_path, tmp_path / "out", ["qat"], tok, calibration=_corpus(16), eval_data=_corpus(),
                           config=_cfg(calibration_samples=8, qat={"max_steps": 3, "batch_size": 4}),
                           qat_source=_qat_source(model_dir))
    rec = report["methods"]["qat"]
    out_file = tmp_path / "out" / rec["path"]
    assert rec["path"] == "model.int8-qat.onnx" and rec["precision"] == "int8"
    graph = onnx.load(str(out_file)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    # weights are stored as int8 (their QuantizeLinear folded); activations keep QuantizeLinear
    inits = {i.name: i for i in graph.initializer}
    assert not [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in inits]
    assert sum(i.data_type == onnx.TensorProto.INT8 for i in inits.values()) >= 4
    assert out_file.stat().st_size < 0.8 * onnx_path.stat().st_size  # tiny model: node names weigh a lot
    qat = rec["attempts"][0]["qat"]
    assert qat["steps"] == 3 and qat["train_examples"] == 12  # max_steps x batch_size rows were read
    assert rec["calibration_rows_yielded"] == 8
    assert mean_cosine(run_onnx(onnx_path, tok, TEXTS, "sentence_embedding"),
                       run_onnx(out_file, tok, TEXTS, "sentence_embedding")) >= 0.98
    assert len(rec["attempts"]) == 1  # QAT has no fallbacks of its own


def test_qat_is_skipped_when_nncf_ptq_meets_the_floor(tiny_student, tmp_path):
    model_dir, onnx_path, tok = tiny_student
    report = quantize_onnx(onnx_path, tmp_path / "out", ["qat", "nncf"], tok, calibration=_corpus(16),
                           eval_data=_corpus(), config=_cfg(calibration_samples=8, guard={"retention_floor": 0.5}),
                           qat_source=_qat_source(model_dir))
    assert report["methods"]["nncf"]["meets_floor"] is True
    assert "qat" not in report["methods"] and "NNCF PTQ met the floor" in report["skipped"]["qat"]


def test_qat_without_the_pytorch_student_is_refused(tiny_embedding, tmp_path):
    from compress.core.errors import EdgepressError

    onnx_path, tok = tiny_embedding
    with pytest.raises(EdgepressError, match="--student"):
        quantize_onnx(onnx_path, tmp_path / "out", ["qat"], tok, calibration=_corpus(16), config=_cfg())


def test_the_ladder_never_keeps_every_layer_in_float(tiny_embedding, tmp_path, unreachable_floor):
    """Floating all encoder layers (and embeddings + head) leaves no INT8 op: that is the fp32 model relabelled,
    so with sensitive_layers = the layer count the ladder ends before it, and fp32 is recommended."""
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic"], tok, eval_data=_corpus(),
                           config=_cfg(guard={"retention_floor": 1.0, "sensitive_layers": 2, "sensitivity_samples": 16}))
    labels = [a["label"] for a in report["methods"]["dynamic"]["attempts"]]
    assert labels[-1] == "float embeddings+head" and not any("sensitive" in label for label in labels)
    assert report["recommended"]["variant"] == "fp32"
