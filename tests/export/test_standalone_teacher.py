"""`edgepress export MODEL OUT` exports MODEL as itself: MODEL is never written into teacher.model (it used to be,
which checked it against teacher.max_length and recorded it as the teacher), and export.include_teacher exports
only a teacher the user named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from compress.cli.main import main
from tests.cli_errors import expect_one_line_error

POSITIONS = 64  # fewer than teacher.max_length's default (128), which a teacher must fit and an exported model need not


def _short_model(tiny_model_dir, tmp_path: Path) -> Path:
    """A tiny embedding BERT with 64 position embeddings (the same weights otherwise), its tokenizer beside it."""
    from transformers import AutoConfig, AutoModel

    src = tiny_model_dir("bert", "embedding")
    config = AutoConfig.from_pretrained(src, max_position_embeddings=POSITIONS)
    model = AutoModel.from_config(config)
    full = AutoModel.from_pretrained(src).state_dict()
    model.load_state_dict({k: v[:POSITIONS] if "position_embeddings" in k else v for k, v in full.items()})
    dst = tmp_path / "short-student"
    model.save_pretrained(dst)
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
            shutil.copy2(f, dst / f.name)
    return dst


def _stage_json(out: Path) -> dict:
    return json.loads((out / "stage.json").read_text())


def test_export_on_its_own_names_no_teacher_and_parity_checks(tiny_model_dir, tmp_path):
    model = _short_model(tiny_model_dir, tmp_path)
    out = tmp_path / "out"
    main(["export", str(model), str(out)])
    meta = _stage_json(out)
    assert meta["sections"]["teacher"]["model"] == ""  # no teacher: not the exported model, not the packaged one
    assert str(model) not in json.dumps(meta["sections"])
    parity = meta["metrics"]["student"]["parity_onnx"]
    assert parity["enforced"] and parity["cases"] == 5 and parity["max_abs_diff"] < 1e-4
    assert meta["metrics"]["student"]["max_length"] == max(parity["sequence_lengths"]) == POSITIONS
    assert meta["outputs"]["onnx"] == "model.onnx" and (out / "model.onnx").stat().st_size > 10_000
    assert "teacher_onnx" not in meta["outputs"] and not (out / "teacher").exists()


def test_include_teacher_without_a_named_teacher_is_one_line(tiny_model_dir, tmp_path, capsys):
    model = tiny_model_dir("bert", "embedding")
    out = tmp_path / "out"
    expect_one_line_error(capsys, ["export", str(model), str(out), "--set", "export.include_teacher=true"], 2,
                          ("export.include_teacher", "no teacher is named", "--set teacher.model="))
    assert not (out / "model.onnx").exists()


def test_include_teacher_exports_the_teacher_the_config_names(tiny_model_dir, tmp_path):
    model = _short_model(tiny_model_dir, tmp_path)
    teacher = tiny_model_dir("bert", "embedding")
    config = tmp_path / "run.yaml"
    config.write_text(f"teacher: {{model: '{teacher}'}}\ndata: {{train: builtin:pydoc}}\n")
    out = tmp_path / "out"
    main(["export", str(model), str(out), "--config", str(config), "--set", "export.include_teacher=true"])
    meta = _stage_json(out)
    assert meta["sections"]["teacher"]["model"] == str(teacher)
    assert meta["outputs"]["teacher_onnx"] == "teacher/model.onnx" and (out / "teacher" / "model.onnx").is_file()
    assert meta["metrics"]["student"]["max_length"] == POSITIONS  # each at its own length: the teacher's 130 positions
    assert meta["metrics"]["teacher"]["max_length"] == 130
    assert meta["metrics"]["teacher"]["parity_onnx"]["max_abs_diff"] < 1e-4


def test_api_export_takes_a_teacher_only_from_what_the_caller_names(tiny_model_dir, tmp_path):
    from compress import api

    model = tiny_model_dir("bert", "embedding")
    no_teacher = tmp_path / "no-teacher.yaml"
    no_teacher.write_text("export: {opset: 17}\n")  # a config without a teacher section names none
    run = api.export(model, tmp_path / "a", config=no_teacher)
    assert _stage_json(run.out_dir)["sections"]["teacher"]["model"] == ""
    assert run["onnx"].is_file() and run.metrics["max_abs_diff"] < 1e-4
    teacher = str(tiny_model_dir("distilbert", "embedding"))
    named = api.export(model, tmp_path / "b", teacher={"model": teacher})  # a section names one
    assert _stage_json(named.out_dir)["sections"]["teacher"]["model"] == teacher


def test_formats_flag_sets_export_formats_and_refuses_an_unknown_one(tiny_model_dir, tmp_path, capsys):
    """`--formats onnx,ort` is export.formats=[onnx, ort] (a later --set still wins); an unknown name is one line."""
    model = tiny_model_dir("bert", "embedding")
    out = tmp_path / "out"
    main(["export", str(model), str(out), "--formats", "onnx, ort"])
    assert _stage_json(out)["sections"]["export"]["formats"] == ["onnx", "ort"] and (out / "model.ort").is_file()
    expect_one_line_error(capsys, ["export", str(model), str(tmp_path / "bad"), "--formats", "onnx,tflite"], 2,
                          ("export.formats", "tflite"))
