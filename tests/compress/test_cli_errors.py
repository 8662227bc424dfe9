"""Bad input exits non-zero with one short message naming the problem, and no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def edgepress(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compress.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def write_config(tmp_path: Path, model: str, train: str, extra: str = "") -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\noutput_dir: {tmp_path / 'runs'}\nstages: [distill]\nteacher: {{model: '{model}'}}\n"
                   f"data: {{train: '{train}'}}\ndistill: {{max_steps: 1}}\n{extra}")
    return cfg


def assert_clean_error(res: subprocess.CompletedProcess, *needles: str, code: int = 1) -> None:
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in res.stderr, res.stderr
    assert len(res.stderr.splitlines()) < 20


def test_mistyped_config_key(tmp_path, tiny_bert_dir):
    cfg = write_config(tmp_path, str(tiny_bert_dir), "builtin:pydoc", "distil: {epochs: 1}\n")
    assert_clean_error(edgepress("run", str(cfg), cwd=tmp_path), "unknown key 'distil'", "did you mean 'distill'",
                       code=2)


def test_model_path_that_does_not_exist(tmp_path):
    cfg = write_config(tmp_path, str(tmp_path / "no-such-model"), "builtin:pydoc")
    assert_clean_error(edgepress("run", str(cfg), cwd=tmp_path), "no-such-model", "does not exist")


def test_empty_data_file(tmp_path, tiny_bert_dir):
    data = tmp_path / "empty.tsv"
    data.write_text("sentence\tlabel\n")
    cfg = write_config(tmp_path, str(tiny_bert_dir), str(data))
    assert_clean_error(edgepress("run", str(cfg), cwd=tmp_path), "empty.tsv", "is empty")


def test_text_column_not_in_file(tmp_path, tiny_bert_dir):
    data = tmp_path / "d.tsv"
    data.write_text("text\tlabel\nhello there\t1\n")
    cfg = write_config(tmp_path, str(tiny_bert_dir), str(data))
    assert_clean_error(edgepress("run", str(cfg), cwd=tmp_path), "column 'sentence' not found", "text")


def test_task_head_that_does_not_match_the_model(tmp_path, tiny_model_dir):
    model = tiny_model_dir("bert", "embedding")  # saved without an MLM head
    cfg = write_config(tmp_path, str(model), "builtin:pydoc", "task: mlm\n")
    assert_clean_error(edgepress("run", str(cfg), cwd=tmp_path), "no trained mlm head")


def test_debug_shows_traceback(tmp_path):
    cfg = write_config(tmp_path, str(tmp_path / "missing"), "builtin:pydoc")
    res = edgepress("run", str(cfg), "--debug", cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" in res.stderr


@pytest.mark.parametrize("cmd", [[], ["run"], ["distill"], ["prune"], ["quantize"], ["export"], ["finetune"], ["bench"], ["bench", "run"]])
def test_help_everywhere(cmd):
    res = subprocess.run([sys.executable, "-m", "compress.cli.main", *cmd, "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout and len(res.stdout) > 200


def test_task_help_names_every_task_the_schema_takes():
    import typing

    from compress.cli.main import TASK_HELP
    from compress.config import Task

    assert [t.strip() for t in TASK_HELP.split("(")[0].split("|")] == list(typing.get_args(Task))
