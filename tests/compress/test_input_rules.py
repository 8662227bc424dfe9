"""Issue 34's rules that are not refusals: which setting cuts which split (and the line saying so), what bench counts
as the model, names escaped in report.md and on the console, the QA stride default, the bundle's reference.py
staying inside its folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compress.cli.main import main
from tests.tiny import make_tiny_model


def _sentences(path: Path, n: int) -> str:
    path.write_text("".join(f"Test sentence number {i} is about the weather today.\n" for i in range(n)))
    return str(path)


def test_each_cap_cuts_its_own_split_and_says_so(tmp_path, capsys):
    """data.max_eval_samples cuts the eval split; a data.test file is cut only by bench.max_eval_samples."""
    tiny = make_tiny_model(tmp_path / "tiny", "bert", "embedding")
    test_file = _sentences(tmp_path / "test.txt", 30)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: cut\noutput_dir: {tmp_path / 'runs'}\ntask: embedding\nstages: [bench]\n"
                   f"teacher: {{model: '{tiny}'}}\n"
                   f"data: {{train: 'builtin:pydoc', test: '{test_file}', max_eval_samples: 5}}\n"
                   "bench: {max_eval_samples: 20, warmup: 0, min_runs: 1, min_seconds: 0, rounds: 1, realistic: false,"
                   " seq_lens: [8], session_memory: false}\n")
    main(["run", str(cfg)])
    err = capsys.readouterr().err
    assert "test split cut to 20 of 30 rows by bench.max_eval_samples" in err
    eval_line = next(ln for ln in err.splitlines() if "eval split cut to 5 of" in ln)
    assert eval_line.endswith("rows by data.max_eval_samples")
    plan = json.loads((tmp_path / "runs" / "cut" / "data" / "splits.json").read_text())
    assert plan["splits"]["test"]["rows"] == 30 and plan["splits"]["eval"]["rows"] == 5  # the test file kept whole
    report = json.loads((tmp_path / "runs" / "cut" / "report.json").read_text())
    assert report["data"]["rows"] == 20


def test_without_a_test_file_test_is_the_eval_split_as_cut(tmp_path):
    from compress.config import load_config
    from compress.data.rows import load_splits

    cfg = load_config(None, ["data.max_eval_samples=7", "data.eval_fraction=0.2"],
                      base={"teacher": {"model": "x"}, "data": {"train": "builtin:pydoc"}})
    splits = load_splits(cfg.data, "embedding", 0)
    assert len(splits.eval) == len(splits.test) == 7 and splits.test.texts == splits.eval.texts


def test_bench_cli_says_when_max_samples_cuts_data(tmp_path, capsys):
    tiny = make_tiny_model(tmp_path / "tiny", "bert", "embedding")
    data = _sentences(tmp_path / "d.txt", 12)
    main(["bench", "run", str(tiny), "--data", data, "--max-samples", "4", "--no-realistic", "--seq", "8", "--warmup",
          "0", "--min-runs", "1", "--min-seconds", "0", "--no-session-memory", "--out", str(tmp_path / "b")])
    assert f"--data '{data}' split cut to 4 of 12 rows by --max-samples" in capsys.readouterr().err.replace("\n", "")
    assert json.loads((tmp_path / "b" / "report.json").read_text())["data"]["rows"] == 4


def test_markup_in_a_model_name_is_kept_literal(tmp_path, capsys, monkeypatch):
    """NAME=PATH with Markdown and rich markup: report.md keeps its table, the console prints the name as given."""
    monkeypatch.setenv("COLUMNS", "300")  # rich sizes its table to this: no cell wraps
    tiny = make_tiny_model(tmp_path / "tiny", "bert", "embedding")
    name = "[bold]x[/oops]|*y*_z"
    main(["bench", "run", f"{name}={tiny}", "--seq", "8", "--warmup", "0", "--min-runs", "1", "--min-seconds", "0",
          "--no-session-memory", "--out", str(tmp_path / "b")])
    out, err = capsys.readouterr()
    assert f"│ {name} [d2-" in out  # the table cell (and the shape label after it), markup shown literally
    assert f"loading {name} (" in err and "Traceback" not in err
    md = (tmp_path / "b" / "report.md").read_text()
    row = next(ln for ln in md.splitlines() if "x\\[/oops\\]" in ln)
    assert "\\[bold\\]x\\[/oops\\]\\|\\*y\\*\\_z" in row
    head = md.splitlines()[md.splitlines().index(row) - 2]  # the Results header: same column count as the row
    assert row.replace("\\|", "").count("|") == head.count("|")


def test_bench_counts_only_the_model_files(tmp_path):
    """Size and hash cover the ONNX file and the external data its graph names, or the weights a folder loads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    from benchmarks.harness import file_size_mb
    from benchmarks.identity import content_hash, weight_files

    folder = make_tiny_model(tmp_path / "tiny", "bert", "embedding")
    (folder / "training_args.bin").write_bytes(b"x" * 1000)
    (folder / "checkpoint-1").mkdir()
    (folder / "checkpoint-1" / "model.safetensors").write_bytes(b"y" * 1000)
    assert weight_files(folder) == [folder / "model.safetensors"]
    assert file_size_mb(folder) == (folder / "model.safetensors").stat().st_size / 1e6

    weight = numpy_helper.from_array(np.ones((256, 4), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    out = tmp_path / "onnx"
    out.mkdir()
    onnx.save_model(helper.make_model(graph), str(out / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    (out / "model.onnx.data").write_bytes(b"z" * 5000)  # a stale file beside it, not named by the graph
    before = content_hash(out / "model.onnx")
    assert weight_files(out / "model.onnx") == [out / "model.onnx", out / "weights.bin"]
    (out / "model.onnx.data").write_bytes(b"q" * 5000)
    assert content_hash(out / "model.onnx") == before
    (out / "weights.bin").write_bytes((out / "weights.bin").read_bytes()[::-1])
    assert content_hash(out / "model.onnx") != before


def test_qa_stride_default_follows_the_length():
    from compress.config import load_config

    base = {"teacher": {"model": "x"}, "data": {"train": "y"}, "task": "question-answering"}
    assert load_config(None, [], base=base).data.doc_stride == 42  # a third of 128 (run_qa: 128 of 384)
    assert load_config(None, ["teacher.max_length=384"], base=base).data.doc_stride == 128
    assert load_config(None, ["data.doc_stride=64"], base=base).data.doc_stride == 64


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from export.bundle import export_bundle

    root = tmp_path_factory.mktemp("bundle")
    model = make_tiny_model(root / "tiny", "bert", "embedding")
    export_bundle(model, root / "bundle", "embedding", formats=["onnx"])
    (root / "secret.json").write_text("{}")
    return root / "bundle"


def _reference(bundle: Path, tmp_path: Path, manifest_edit, *args: str) -> subprocess.CompletedProcess:
    copy = tmp_path / "b"
    import shutil

    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest_edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return subprocess.run([sys.executable, str(copy / "reference.py"), "A sentence.", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("edit,args,needle", [
    (lambda m: m["tokenizer"].update(tokenizer_json="../../secret.json"), (), "../../secret.json"),
    (lambda m: m["tokenizer"].update(tokenizer_json="/etc/hostname"), (), "/etc/hostname"),
    (lambda m: m["models"][0].update(file="../secret.json"), (), "../secret.json"),
    (lambda m: None, ("--model", "../../secret.json"), "--model '../../secret.json'"),
], ids=["tokenizer-dotdot", "tokenizer-absolute", "model-dotdot", "model-flag"])
def test_reference_py_refuses_paths_outside_the_bundle(bundle, tmp_path, edit, args, needle):
    proc = _reference(bundle, tmp_path, edit, *args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "outside the bundle folder" in lines[0] and needle in lines[0], proc.stderr
    assert proc.stdout == ""


def test_reference_py_still_runs_inside_the_bundle(bundle, tmp_path):
    proc = _reference(bundle, tmp_path, lambda m: None)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["sentence_embedding"]) == 32
