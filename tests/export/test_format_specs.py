"""The format registry (compress/model/formats.py) is the one answer: every writer, bench runner and stage table
agrees with it, and a format registered in a test alone reaches export config validation, the writers, the runners
and the export stage's output keys."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from compress.core.errors import ConfigError, EdgepressError
from compress.model.formats import (FORMAT_SPECS, FORMATS, FormatSpec, format_spec, formats_with, install_hint,
                                    runtime_of)

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = ("onnxruntime", "openvino", "litert", "executorch", "coreml", "torch")


def test_every_spec_is_complete_and_names_a_known_runtime():
    assert list(FORMATS) == list(FORMAT_SPECS)
    for name, spec in FORMAT_SPECS.items():
        assert spec.name == name and spec.runtime in RUNTIMES
        assert spec.title and spec.platforms and spec.app_runtime and spec.package and spec.file
        assert spec.output_keys == (name, *(f"{name}_{p}" for p in spec.precisions))
        assert bool(spec.runners) != bool(spec.untimed), f"{name}: a runner times it, or untimed says why not"


def test_every_writer_is_the_function_its_spec_names():
    from export.writer import WRITERS

    assert list(WRITERS) == [n for n in FORMATS if n != "onnx"]  # onnx is written first by every export
    for name in WRITERS:
        spec, writer = FORMAT_SPECS[name], WRITERS[name]
        module, _, function = spec.writer.partition(":")
        assert writer.write.__module__ == module and writer.write.__name__ == function
        assert (writer.preflight is None) == (not spec.preflight) and writer.calibrates == spec.calibrates
    assert WRITERS["openvino"].calibrates and not WRITERS["litert"].calibrates


def test_every_bench_runner_measures_the_format_and_device_its_spec_names():
    from benchmarks.runners import FORMATS as BENCH_FORMATS
    from benchmarks.runners import UNSUPPORTED, runner_class
    from benchmarks.runners.base import Runner

    assert list(BENCH_FORMATS) == ["pytorch", *FORMATS]
    for spec in FORMAT_SPECS.values():
        for device, _ in spec.runners:
            cls = runner_class(spec.name, device)
            assert issubclass(cls, Runner) and spec.name in cls.formats and cls.device == device
    assert dict(UNSUPPORTED) == {"coreml": FORMAT_SPECS["coreml"].untimed}
    with pytest.raises(EdgepressError, match="Apple devices"):
        runner_class("coreml")


def test_stage_tables_are_the_registry_flags():
    from compress.package.stage import MOBILE_FORMATS, RUNTIME_FOLDERS
    from compress.quantize.stage import RUNTIME_FORMATS as GUARDED
    from compress.run.registry import STAGES
    from compress.search.config import RUNTIME_FORMATS as SEARCHED
    from export.bundle import RUNTIMES as BUNDLE_RUNTIMES
    from export.heads import FILE_NAMES, FILE_PRECISION
    from export.runtime_folder import call_snippet

    assert tuple(GUARDED) == ("executorch", "litert", "openvino", "coreml")
    assert tuple(RUNTIME_FOLDERS) == ("executorch", "litert", "openvino", "coreml")
    assert set(MOBILE_FORMATS) == {"torchscript", "ptl", "executorch"}
    assert dict(SEARCHED) == {"onnxruntime": "onnx", "openvino": "openvino", "litert": "litert",
                              "executorch": "executorch"}  # the order search.runtimes lists them in
    assert all(runtime_of(fmt) == runtime for runtime, fmt in SEARCHED.items())
    assert list(STAGES["export"].optional) == [
        "bundle", "onnx_optimized", "teacher_onnx", "torchscript", "ptl", "ort", "executorch", "litert",
        "litert_fp16", "litert_int8", "openvino", "openvino_int8", "coreml", "coreml_int8"]
    assert set(BUNDLE_RUNTIMES) == set(FILE_NAMES) == set(FORMATS)
    assert FILE_NAMES["litert"] == "litert/model.tflite" and FILE_PRECISION.get("coreml", "fp32") == "fp16"
    assert FILE_PRECISION.get("onnx", "fp32") == "fp32" and FILE_PRECISION.get("onnx_int8", "fp32") == "fp32"
    for fmt in RUNTIME_FOLDERS:  # every runtime folder can say how to call its file
        assert "print(" in call_snippet(fmt, "m", ["input_ids", "attention_mask"], ["logits"], 32)
    with pytest.raises(ValueError, match="no runtime folder for format 'ort'; known: executorch, litert"):
        call_snippet("ort", "m", ["input_ids", "attention_mask"], ["logits"], 32)


def test_install_hints_name_the_extras_pyproject_defines():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for spec in FORMAT_SPECS.values():
        assert not spec.extra or spec.extra in extras, f"{spec.name}: edgepress[{spec.extra}] is not an extra"
    assert install_hint("openvino") == "pip install 'edgepress[openvino]'"
    assert install_hint("onnx") == "pip install onnxruntime"


def test_lookups_refuse_unknown_names_in_one_line():
    with pytest.raises(ConfigError, match=r"^unknown export format 'openvin': did you mean 'openvino'\? formats: onnx, "):
        format_spec("openvin")
    assert runtime_of("ort") == "onnxruntime" and runtime_of("torchscript") == "torch"
    assert runtime_of("pytorch") == "pytorch"  # outside the registry: its own runtime


def test_search_refuses_an_untimed_runtime_with_the_registry_reason():
    from compress.search.config import SearchConfig

    with pytest.raises(ValueError, match=r"Core ML cannot be timed here \(it runs only on Apple devices\); ship it "
                                         r"with export.formats: \[coreml\]"):
        SearchConfig(runtimes=["coreml"])


def write_toy(prep, onnx_path: Path, path: Path, done) -> None:
    """The test's format: a copy of model.onnx under its own name, checked against PyTorch by ONNX Runtime."""
    from export.parity import onnx_runner

    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, path)
    done.metrics["parity_toy"] = prep.check(f"toy file '{path.name}'", onnx_runner(str(path), prep.output_names))


TOY = FormatSpec("toy", "onnxruntime", "Toy Runtime", "tests", "Toy Runtime (tests)", "onnxruntime", "toy/model.toy.onnx",
                 precisions=("int8",), own_folder=True, guard_scores=True, writer=f"{__name__}:write_toy",
                 runners=(("cpu", "benchmarks.runners.ort_runner:OrtCpuRunner"),))


@pytest.fixture
def toy(monkeypatch):
    """The registry with the test's ``toy`` format added after every module read it."""
    monkeypatch.setitem(FORMAT_SPECS, "toy", TOY)
    return TOY


def test_a_format_registered_in_a_test_reaches_config_writers_runners_and_stage_keys(toy, monkeypatch, tiny_model_dir,
                                                                                   tmp_path):
    from pydantic import ValidationError

    from benchmarks.runners import runner_class
    from benchmarks.runners.ort_runner import OrtCpuRunner
    from compress.package.stage import RUNTIME_FOLDERS
    from compress.quantize.stage import RUNTIME_FORMATS
    from compress.run.registry import STAGES
    from export.config import ExportConfig
    from export.core import prepare
    from export.heads import FILE_NAMES, get_head
    from export.writer import WRITERS, write_formats

    assert ExportConfig(formats=["onnx", "toy"]).formats == ["onnx", "toy"]
    assert get_head("embedding", "toy").task == "embedding"
    assert WRITERS["toy"].write is write_toy and runner_class("toy") is OrtCpuRunner
    assert {"toy", "toy_int8"} <= set(STAGES["export"].optional)
    assert "toy" in RUNTIME_FORMATS and "toy" in RUNTIME_FOLDERS and FILE_NAMES["toy"] == "toy/model.toy.onnx"
    assert install_hint("toy") == "pip install onnxruntime" and runtime_of("toy") == "onnxruntime"
    done = write_formats(prepare(tiny_model_dir("bert", "embedding"), "embedding"), tmp_path, ["onnx", "toy"])
    assert done.files["toy"] == tmp_path / "toy" / "model.toy.onnx" and done.files["toy"].is_file()
    assert done.metrics["parity_toy"]["min_cosine"] > 0.999
    monkeypatch.delitem(FORMAT_SPECS, "toy")  # gone again: refused with pydantic's literal error, as a typo is
    with pytest.raises(ValidationError, match="Input should be 'onnx', .* or 'coreml'"):
        ExportConfig(formats=["toy"])
    assert "toy" not in formats_with("own_folder") and "toy" not in WRITERS
