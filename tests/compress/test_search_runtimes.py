"""search.runtimes: candidates timed in each platform runtime, and final/ shipping the winner's runtime folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compress.cli.main import main
from tests.cli_errors import expect_one_line_error


def _run_config(tiny_model_dir, shared_data, tmp_path, **sections) -> dict:
    """A run on a tiny embedding teacher distilled to 1 layer on 64 STS-B rows; ``sections`` add the rest."""
    from tests.tiny import sts_run_config

    return sts_run_config(tiny_model_dir("bert", "embedding"), shared_data, tmp_path,
                          **{"bench": {"warmup": 0, "min_runs": 2, "min_seconds": 0.0, "threads": 1}, **sections})


def _write(tmp_path: Path, data: dict, name: str = "c.yaml") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))  # JSON is YAML
    return str(path)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _runs_its_snippet(folder: Path) -> str:
    """Run the manifest's Python call in ``folder`` (a fresh interpreter, as a user would); returns its stdout."""
    manifest = json.loads((folder / "manifest.json").read_text())
    proc = subprocess.run([sys.executable, "-c", manifest["call"]["python"]], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_search_runtimes_are_validated_and_become_branch_formats():
    from compress.config import load_config
    from compress.core.errors import ConfigError
    from compress.search.branches import branch_config

    base = ["teacher.model=x", "data.train=y", "stages=[distill, search]"]
    cfg = load_config(None, base)
    assert cfg.search.runtimes == ["onnxruntime"]
    default = branch_config(cfg, 1, 0.0)  # today's branch: ONNX only, fused in quantize
    assert default.export.formats == ["onnx"] and default.stages == ["export", "quantize"]
    assert not default.export.optimize
    both = branch_config(load_config(None, [*base, "search.runtimes=[onnxruntime, openvino, litert, executorch]"]),
                         1, 0.3)
    assert both.export.formats == ["onnx", "openvino", "litert", "executorch"]
    assert both.stages == ["prune", "export", "quantize"]
    alone = branch_config(load_config(None, [*base, "search.runtimes=[executorch]"]), 1, 0.0)
    assert alone.export.formats == ["onnx", "executorch"] and alone.stages == ["export"]  # no ONNX INT8 to time
    with pytest.raises(ConfigError, match=r"search.runtimes.*Core ML cannot be timed here \(it runs only on Apple "
                                          r"devices\); ship it with export.formats: \[coreml\]"):
        load_config(None, [*base, "search.runtimes=[onnxruntime, coreml]"])
    with pytest.raises(ConfigError, match="unknown runtime 'onnx' \\(did you mean 'onnxruntime'\\?\\); choose from "
                                          "onnxruntime, openvino, litert, executorch"):
        load_config(None, [*base, "search.runtimes=[onnx]"])
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(None, [*base, "search.runtimes=[litert, litert]"])
    with pytest.raises(ConfigError, match="at least one runtime"):
        load_config(None, [*base, "search.runtimes=[]"])


def test_a_runtime_that_cannot_run_here_is_refused_before_any_branch(tiny_model_dir, shared_data, tmp_path,
                                                                   capsys, monkeypatch):
    """A runtime whose package is missing: one line with the pip install that fixes it, exit 1, no branch run."""
    import export.mobile

    hint = "ExecuTorch is not installed: pip install 'edgepress[executorch]'"
    monkeypatch.setattr(export.mobile, "executorch_available", lambda: (False, hint))
    cfg = _run_config(tiny_model_dir, shared_data, tmp_path, name="missing", stages=["distill", "search"],
                      search={"prune_ratios": [0.0], "quantize": [], "runtimes": ["onnxruntime", "executorch"]})
    expect_one_line_error(capsys, ["run", _write(tmp_path, cfg)], 1,
                          ("search.runtimes: executorch", "pip install 'edgepress[executorch]'"))
    run_dir = tmp_path / "runs" / "missing"
    assert (run_dir / "01-distill" / "stage.json").is_file() and not (run_dir / "search").exists()


def test_runtimes_the_target_cannot_run_are_refused_by_name():
    """A CUDA target has no OpenVINO runner; an ssh:// target runs ONNX Runtime and LiteRT files only."""
    from compress.config import load_config
    from compress.core.errors import EdgepressError
    from compress.search.stage import check_runtimes

    base = ["teacher.model=x", "data.train=y"]
    check_runtimes(load_config(None, [*base, "search.runtimes=[onnxruntime, openvino, executorch]"]))
    with pytest.raises(EdgepressError, match="search.runtimes: openvino cannot be timed on cuda: no runner for "
                                             "format 'openvino' on device 'cuda'"):
        check_runtimes(load_config(None, [*base, "search.runtimes=[openvino]", "search.targets.device=cuda"]))
    with pytest.raises(EdgepressError, match="search.runtimes: executorch cannot be timed on ssh://pi@board: remote "
                                             "targets run onnx, ort, litert, openvino files"):
        check_runtimes(load_config(None, [*base, "search.runtimes=[onnxruntime, executorch]",
                                          "search.targets.device=ssh://pi@board"]))


def test_search_times_each_runtime_and_final_ships_the_winners_runtime(tiny_model_dir, shared_data, tmp_path):
    """runtimes [onnxruntime, executorch, openvino, litert]: every branch file is a candidate in its runtime; the winner's
    runtime gets final/<runtime>/. Rerun with runtimes [executorch]: the package runs again (a new key) and
    final/executorch/ ships the branch's .pte with a manifest whose call runs."""
    cfg = _run_config(tiny_model_dir, shared_data, tmp_path, name="rt", stages=["distill", "search"],
                      search={"prune_ratios": [0.0], "quantize": ["dynamic"], "max_eval_samples": 16,
                              "runtimes": ["onnxruntime", "executorch", "openvino", "litert"],
                              "targets": {"retention_floor": 0.01}},
                      quantize={"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}})
    main(["run", _write(tmp_path, cfg)])
    run_dir = tmp_path / "runs" / "rt"
    data = json.loads((run_dir / "02-search" / "candidates.json").read_text())
    runtimes = {c["name"]: c["runtime"] for c in data["candidates"]}
    assert runtimes == {"d1-p00/student-fp32-opt": "onnxruntime", "d1-p00/student-int8-dynamic": "onnxruntime",
                        "d1-p00/student-executorch": "executorch", "d1-p00/student-openvino": "openvino",
                        "d1-p00/student-openvino-int8": "openvino", "d1-p00/student-litert": "litert",
                        "d1-p00/student-litert-fp16": "litert", "d1-p00/student-litert-int8": "litert"}
    assert all(c["status"] == "ok" and c["p50_ms"] > 0 and c["retention"] > 0 for c in data["candidates"])
    precisions = {c["name"]: c["precision"] for c in data["candidates"]}
    assert precisions["d1-p00/student-openvino-int8"] == "int8" and precisions["d1-p00/student-executorch"] == "fp32"
    md = (run_dir / "02-search" / "search.md").read_text()
    assert "| Candidate | Runtime |" in md and "| d1-p00/student-executorch | executorch | 1 |" in md
    winner = next(c for c in data["candidates"] if c["name"] == data["winner"])
    fastest = min(data["candidates"], key=lambda c: c["p50_ms"])
    assert winner["p50_ms"] <= fastest["p50_ms"] * 1.05  # tie_margin 0.05: the rule is unchanged
    final = run_dir / "final"
    package = json.loads((final / "package.json").read_text())
    assert package["chosen"]["runtime"] == winner["runtime"]
    shipped = {p.name for p in final.iterdir() if p.is_dir()} & {"openvino", "litert", "executorch", "coreml"}
    assert shipped == ({winner["runtime"]} - {"onnxruntime"}) and set(package["runtimes"]) == shipped
    assert (final / "onnx" / "model.onnx").is_file() and (final / "model" / "onnx" / "model.onnx").is_file()
    first_key = package["key"]
    record = json.loads((run_dir / "02-search" / "stage.json").read_text())
    same_model = {v["format"]: v for v in record["variants"] if v["name"].startswith("search-winner-")}
    assert set(same_model) == {"onnx", "executorch", "openvino", "litert"} - {winner["runtime"].replace("onnxruntime", "onnx")}
    for v in same_model.values():  # the winner's model in every other runtime, each a file the bench stage can open
        assert v["name"].split(" (")[1].startswith("d1-p00/") and (run_dir / "02-search" / v["path"]).exists()
    if winner["runtime"] != "onnxruntime":
        folder = final / winner["runtime"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["runtime"] == winner["runtime"] and manifest["precision"] == winner["precision"]
        assert (folder / manifest["file"]).exists() and manifest["chosen_by"].startswith("search winner")

    cfg["search"]["runtimes"] = ["executorch"]  # the only runtime: its file wins
    main(["run", _write(tmp_path, cfg)])
    branch = run_dir / "search" / "d1-p00"
    data = json.loads((run_dir / "02-search" / "candidates.json").read_text())
    assert [(c["name"], c["runtime"]) for c in data["candidates"]] == [("d1-p00/student-executorch", "executorch")]
    package = json.loads((final / "package.json").read_text())
    assert package["key"] != first_key and package["chosen"]["runtime"] == "executorch"
    assert package["runtimes"]["executorch"] == {
        "folder": "executorch/", "file": "model.pte", "precision": "fp32",
        "runtime_name": "ExecuTorch (XNNPACK backend)",
        "chosen_by": "search winner (d1-p00/student-executorch): the search's choice on its targets (its search.md "
                     "says why)"}
    folder = final / "executorch"
    assert _sha(folder / "model.pte") == _sha(branch / "01-export" / "model.pte")  # the branch's file, not re-exported
    assert {"model.pte", "tokenizer.json", "config.json", "manifest.json"} <= {p.name for p in folder.iterdir()}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["runtime"], manifest["file"], manifest["precision"]) == ("executorch", "model.pte", "fp32")
    assert [o["name"] for o in manifest["outputs"]] == ["last_hidden_state", "sentence_embedding"]
    assert manifest["files"][0]["check"]["min_cosine"] > 0.999
    bundle = json.loads((final / "bundle" / "manifest.json").read_text())
    note = bundle["chosen"].pop("note")
    assert bundle["chosen"] == {"name": "d1-p00/student-executorch", "origin": "search winner",
                                "runtime": "executorch", "format": "executorch", "file": "../executorch/model.pte",
                                "precision": "fp32", "manifest": "../executorch/manifest.json"}
    assert "final/executorch/" in note and (final / "bundle" / bundle["chosen"]["manifest"]).is_file()
    printed = _runs_its_snippet(folder)
    assert "tensor(" in printed and "nan" not in printed
    assert "runs in executorch: `executorch/`" in (final / "README.md").read_text()


def test_export_formats_ship_a_folder_per_runtime(tiny_model_dir, shared_data, tmp_path):
    """export.formats [onnx, executorch, openvino, litert] without a search: final/ keeps its ONNX folders and adds
    executorch/, openvino/ and litert/, each from the export stage's files, with a manifest whose call runs."""
    cfg = _run_config(tiny_model_dir, shared_data, tmp_path, name="ex", stages=["distill", "export"],
                      export={"formats": ["onnx", "executorch", "openvino", "litert"]})
    main(["run", _write(tmp_path, cfg)])
    run_dir = tmp_path / "runs" / "ex"
    final = run_dir / "final"
    package = json.loads((final / "package.json").read_text())
    assert package["chosen"]["runtime"] == "onnxruntime"
    assert set(package["runtimes"]) == {"executorch", "openvino", "litert"}
    assert {"model", "onnx", "bundle", "executorch", "openvino", "litert"} <= {p.name for p in final.iterdir()}
    bundle = json.loads((final / "bundle" / "manifest.json").read_text())
    assert bundle["chosen"]["runtime"] == "onnxruntime" and bundle["chosen"]["file"] == "model.onnx"
    assert "model.pte" in [m["file"] for m in bundle["models"]]  # .pte stays a bundle file too, as before
    export = run_dir / "02-export"
    record = json.loads((export / "stage.json").read_text())
    assert record["metrics"]["student"]["quantized_openvino_int8"]["calibration"].startswith("the run's training texts")
    for fmt, main_file, quantized in (("executorch", "model.pte", []),
                                      ("openvino", "openvino_model.xml", ["openvino_model_int8.xml"]),
                                      ("litert", "model.tflite", ["model_fp16.tflite", "model_int8.tflite"])):
        folder = final / fmt
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["runtime"] == fmt and manifest["file"] == main_file and manifest["precision"] == "fp32"
        assert manifest["chosen_by"] == f"export.formats lists {fmt}: its main file"
        assert sorted(f["file"] for f in manifest["files"]) == sorted([main_file, *quantized])
        assert manifest["files"][0]["file"] == main_file
        assert all(f["check"]["fidelity"]["value"] >= 0.98 for f in manifest["files"][1:])
        assert [i["name"] for i in manifest["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
        assert manifest["outputs"][1] == {"name": "sentence_embedding", "dtype": "float32",
                                          "meaning": manifest["outputs"][1]["meaning"],
                                          "shape": [1 if fmt == "litert" else "batch", 32]}  # LiteRT: batch-1 signatures
        assert manifest["files"][0]["check"]["min_cosine"] > 0.999
        assert manifest["pooling"] == bundle["pooling"]
        assert manifest["max_sequence_length"] == bundle["max_sequence_length"]
        src = export / (main_file if fmt == "executorch" else f"{fmt}/{main_file}")
        assert _sha(folder / main_file) == _sha(src)
        assert (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()
        printed = _runs_its_snippet(folder)
        assert any(ch.isdigit() for ch in printed) and "nan" not in printed
    assert (final / "openvino" / "openvino_model.bin").is_file() and (final / "openvino" / "openvino_model_int8.bin").is_file()
    assert package["files"]["openvino"] == "openvino/openvino_model.xml"
    litert = json.loads((final / "litert" / "manifest.json").read_text())
    assert litert["static_lengths"][-1] == litert["max_sequence_length"] and litert["inputs"][0]["shape"] == [1, "sequence"]


def test_core_ml_ships_its_packages_and_says_prediction_was_not_run(tiny_model_dir, shared_data, tmp_path):
    """export.formats [onnx, coreml]: final/coreml/ holds both .mlpackage folders (fp16 main, INT8 sibling) with
    every file inside, and its manifest says Core ML prediction was not run here and takes int32 inputs."""
    cfg = _run_config(tiny_model_dir, shared_data, tmp_path, name="cm", stages=["distill", "export"],
                      export={"formats": ["onnx", "coreml"]})
    main(["run", _write(tmp_path, cfg)])
    final = tmp_path / "runs" / "cm" / "final"
    manifest = json.loads((final / "coreml" / "manifest.json").read_text())
    assert (manifest["runtime"], manifest["file"], manifest["precision"]) == ("coreml", "model.mlpackage", "fp16")
    assert [(f["file"], f["precision"]) for f in manifest["files"]] == [("model.mlpackage", "fp16"),
                                                                        ("model_int8.mlpackage", "int8")]
    assert "prediction was not run" in manifest["verified"]
    assert {i["dtype"] for i in manifest["inputs"]} == {"int32"} and "ct.models.MLModel" in manifest["call"]["python"]
    export = tmp_path / "runs" / "cm" / "02-export" / "coreml"
    for package in ("model.mlpackage", "model_int8.mlpackage"):
        shipped = sorted(p.relative_to(final / "coreml" / package) for p in (final / "coreml" / package).rglob("*")
                         if p.is_file())
        assert shipped and shipped == sorted(p.relative_to(export / package) for p in (export / package).rglob("*")
                                             if p.is_file())
        assert manifest["files"][0]["size_bytes"] > 0
