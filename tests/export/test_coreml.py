"""Core ML: the fp16 ML Program and its INT8-weight sibling are written, load back with coremltools, and carry the
head's names, dtypes and shape ranges; Linux cannot predict, and the metrics say so without skewing the others."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("coremltools")

HEADS = {"embedding": ["last_hidden_state", "sentence_embedding"], "classification": ["logits"],
         "token-classification": ["logits"]}


def _spec(path: Path):
    from export.coreml import coremltools_module

    return coremltools_module().models.MLModel(str(path), skip_model_load=True).get_spec()


@pytest.mark.parametrize("head", list(HEADS))
def test_packages_written_loaded_and_shaped_like_the_head(tiny_model_dir, tmp_path, head):
    import coremltools.optimize.coreml as cto
    from coremltools.proto import FeatureTypes_pb2 as ft

    from export.api import export_model
    from export.coreml import coremltools_module
    from export.files import file_size

    res = export_model(tiny_model_dir("bert", head), tmp_path / "out", head, ["onnx", "coreml"], max_length=48)
    main, int8 = tmp_path / "out" / "coreml" / "model.mlpackage", tmp_path / "out" / "coreml" / "model_int8.mlpackage"
    assert Path(res["files"]["coreml"]) == main and main.is_dir() and int8.is_dir()
    for path in (main, int8):
        desc = _spec(path).description
        assert [i.name for i in desc.input] == ["input_ids", "attention_mask", "token_type_ids"]
        assert [o.name for o in desc.output] == HEADS[head]
        for i in desc.input:
            assert i.type.multiArrayType.dataType == ft.ArrayFeatureType.INT32
            assert [(r.lowerBound, r.upperBound) for r in i.type.multiArrayType.shapeRange.sizeRanges] == [(1, 64), (1, 48)]
        assert all(o.type.multiArrayType.dataType == ft.ArrayFeatureType.FLOAT32 for o in desc.output)
    assert file_size(int8) < file_size(main)  # tiny: only the embedding tables pass the 2048-value threshold
    stored = cto.get_weights_metadata(coremltools_module().models.MLModel(str(int8), skip_model_load=True),
                                      weight_threshold=1)
    assert any(m.val.dtype == np.int8 and m.val.ndim == 2 for m in stored.values())

    m = res["metrics"]
    par, q = m["parity_coreml"], m["quantized_coreml_int8"]
    trailing = 32 if head == "embedding" else 2 if head == "classification" else 5
    assert par["spec"]["outputs"][HEADS[head][-1]]["shape"][-1] == trailing
    assert par["checks"]["weights"]["weights_matched"] >= 20
    assert par["checks"]["weights"]["max_error_in_fp16_roundings"] <= 1.0
    assert q["checks"]["weights"]["quantized_weights"] >= 1 and q["checks"]["weights"]["max_error_in_half_steps"] <= 1.0
    assert q["checks"]["compute_ops"] == par["checks"]["compute_ops"] and par["checks"]["compute_ops"]["linear"] >= 12
    for checks in (par["checks"], q["checks"]):  # the stored weights, in PyTorch at fp16, keep the task's fidelity
        assert checks["emulated"]["weights_loaded"] >= 20 and checks["emulated"]["fidelity"]["value"] >= 0.98
    if sys.platform != "darwin":
        assert par["predicted"] is False and q["predicted"] is False and "macOS" in par["why"]
        assert par["max_abs_diff"] is None and par["enforced"] is False
    # the aggregate is the files that ran: ONNX's numbers, not skewed by the Core ML entry
    assert m["max_abs_diff"] == m["parity_onnx"]["max_abs_diff"] and m["min_cosine"] == m["parity_onnx"]["min_cosine"]
    assert m["size_bytes"]["coreml/model_int8.mlpackage"] < m["size_bytes"]["coreml/model.mlpackage"]


def test_int8_check_fails_when_a_weight_is_off(tiny_model_dir, tmp_path):
    """The INT8 check compares dequantized weights with the fp16 package's: a changed fp16 weight is caught."""
    from export.core import prepare
    from export.coreml import check_int8_weights, convert, quantize_int8
    from export.errors import ExportError

    prep = prepare(tiny_model_dir("bert", "classification"), "classification", max_length=32)
    model = convert(prep)
    model.save(str(tmp_path / "a.mlpackage"))
    quantize_int8(model).save(str(tmp_path / "a_int8.mlpackage"))
    assert check_int8_weights(tmp_path / "a.mlpackage", tmp_path / "a_int8.mlpackage")["max_error_in_half_steps"] <= 1
    with __import__("torch").no_grad():
        prep.wrapper.model.bert.embeddings.word_embeddings.weight.mul_(1.5)
    convert(prep).save(str(tmp_path / "b.mlpackage"))
    with pytest.raises(ExportError, match="half-steps from its fp16 value"):
        check_int8_weights(tmp_path / "b.mlpackage", tmp_path / "a_int8.mlpackage")


def test_missing_coremltools_is_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from tests.cli_errors import expect_one_line_error

    monkeypatch.setitem(sys.modules, "coremltools", None)  # `import coremltools` raises ImportError
    expect_one_line_error(capsys, ["export", str(tiny_model_dir("bert", "classification")), str(tmp_path / "o"),
                                   "--task", "classification", "--set", "export.formats=[onnx, coreml]"], 1,
                          ("Core ML", "pip install 'edgepress[coreml]'"))
    assert not (tmp_path / "o" / "model.onnx").exists()  # refused before any work


def test_bench_run_on_a_package_says_core_ml_is_not_timed_here(tmp_path, capsys):
    from benchmarks.runners import UNSUPPORTED, locate
    from tests.cli_errors import expect_one_line_error

    pkg = tmp_path / "model.mlpackage"
    (pkg / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    assert locate(pkg) == ("coreml", pkg)
    expect_one_line_error(capsys, ["bench", "run", str(pkg)], 1, ("Apple devices", "not timed here"))
    assert "Apple" in UNSUPPORTED["coreml"]


def test_a_package_among_a_runs_variants_is_a_skipped_report_entry(tmp_path):
    """The bench stage times every variant the export wrote: a Core ML one becomes a skipped entry saying why, in a
    report that still validates."""
    from benchmarks.harness import BenchSettings, ModelSpec, benchmark
    from benchmarks.report import validate_report
    from benchmarks.runners.base import Threads

    pkg = tmp_path / "model.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    rep = benchmark([ModelSpec("student-coreml", pkg, "coreml", "fp16")], "embedding",
                    BenchSettings(batch_sizes=[1], seq_lens=[8], warmup=0, min_runs=1, min_seconds=0.0, rounds=1,
                                  threads=Threads(1, 1)))
    validate_report(rep)
    entry = rep["models"][0]
    assert entry["status"] == "skipped" and entry["format"] == "coreml" and "Apple devices" in entry["reason"]


def test_emulation_fails_for_weights_of_another_model(tiny_model_dir, tmp_path):
    """The emulation runs the package's own weights: a package holding another model's weights falls below the
    floor (ParityError), while the model's own package passes."""
    from export.core import prepare
    from export.coreml import convert, emulate
    from export.errors import ParityError
    from tests.tiny import make_tiny_model

    prep = prepare(tiny_model_dir("bert", "token-classification"), "token-classification", max_length=32)
    convert(prep).save(str(tmp_path / "own.mlpackage"))
    assert emulate(prep, tmp_path / "own.mlpackage", "own")["fidelity"]["value"] >= 0.98
    other = prepare(make_tiny_model(tmp_path / "other", "bert", "token-classification", seed=1),
                    "token-classification", max_length=32)
    convert(other).save(str(tmp_path / "other.mlpackage"))
    with pytest.raises(ParityError, match="below the floor"):
        emulate(prep, tmp_path / "other.mlpackage", "other")


def test_bundle_lists_the_package_and_the_ir_with_their_runtimes(tiny_model_dir, tmp_path):
    """A bundle built from an export folder carries the .mlpackage folder and the IR's .xml + .bin under their
    runtime's folder; the manifest names each runtime, lists every file, and gives Core ML no parity (not run)."""
    pytest.importorskip("openvino")
    import json

    from export.bundle import build_bundle, validate_manifest
    from export.core import prepare
    from export.errors import ExportError
    from export.writer import write_formats

    prep = prepare(tiny_model_dir("bert", "classification"), "classification", max_length=32)
    written = write_formats(prep, tmp_path / "export", ["onnx", "openvino", "coreml"])
    build_bundle(prep, written, tmp_path / "bundle", 17)
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    validate_manifest(manifest)
    models = {m["format"]: m for m in manifest["models"]}
    assert models["coreml"]["runtime"] == "Core ML (iOS / macOS)" and models["openvino"]["runtime"] == "OpenVINO Runtime"
    assert models["coreml"]["file"] == "coreml/model.mlpackage" and models["coreml"]["precision"] == "fp16"
    assert "parity" not in models["coreml"] and "macOS" in models["coreml"]["note"]
    assert models["openvino"]["files"] == ["openvino/openvino_model.xml", "openvino/openvino_model.bin"]
    assert models["openvino"]["parity"]["max_abs_diff"] < 1e-3 and "files" not in models["onnx"]
    pkg = models["coreml"]["files"]
    assert "coreml/model.mlpackage/Manifest.json" in pkg and len(pkg) >= 3
    for rel in [*pkg, *models["openvino"]["files"]]:
        assert (tmp_path / "bundle" / rel).is_file() and rel in manifest["files"]
    assert _spec(tmp_path / "bundle" / "coreml" / "model.mlpackage").description.output[0].name == "logits"
    broken = dict(manifest, models=[dict(models["coreml"], format="mlmodel")])
    with pytest.raises(ExportError, match="format"):
        validate_manifest(broken)


def test_a_link_planted_at_the_package_name_is_refused_not_written_through(tmp_path):
    """The package is saved in a fresh folder and put in place: a link at its name stops the write, and the folder
    it points at is left as it was."""
    from compress.core.errors import EdgepressError
    from export.coreml import _save_package

    class Saving:  # coremltools' MLModel.save writes the package folder
        def save(self, where: str) -> None:
            Path(where).mkdir()
            (Path(where) / "Manifest.json").write_text("{}")

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "coreml").mkdir()
    link = tmp_path / "coreml" / "model.mlpackage"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(EdgepressError, match="model.mlpackage"):
        _save_package(Saving(), link)
    assert list(outside.iterdir()) == [] and link.is_symlink()
    fresh = tmp_path / "coreml" / "model_int8.mlpackage"
    _save_package(Saving(), fresh)
    _save_package(Saving(), fresh)  # an older package is replaced
    assert (fresh / "Manifest.json").is_file() and sorted(p.name for p in fresh.parent.iterdir()) == [
        "model.mlpackage", "model_int8.mlpackage"]
