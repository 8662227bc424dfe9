"""The stage list is checked before any work: a stage whose input no earlier stage provides fails at validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from compress.cli.main import main
from compress.config import load_config
from compress.core.errors import ConfigError
from compress.run.stages import STAGES, check_stage_order

ROOT = Path(__file__).resolve().parents[2]
BASE = {"teacher": {"model": "packaged:minilm-l6"}, "data": {"train": "builtin:pydoc"}}


def _cfg(stages: list[str], **extra) -> object:
    return load_config(None, base={**BASE, "stages": stages, **extra})


@pytest.mark.parametrize("stages, needle", [
    (["export"], "'export' needs 'model' from an earlier stage; put distill (or prune) before it"),
    (["distill", "quantize"], "'quantize' needs 'onnx' from an earlier stage; put export before it"),
    (["quantize", "distill", "export"], "'quantize' needs 'onnx'"),
    (["prune", "distill"], "'prune' needs 'model'"),
    (["search", "bench"], "'search' needs 'model'"),
])
def test_wrong_order_or_missing_provider_is_refused(stages, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_stage_order(_cfg(stages))


def test_search_that_distils_its_own_depths_needs_no_student_before_it():
    check_stage_order(_cfg(["search", "bench"], search={"depths": [2]}))


def test_every_shipped_recipe_has_a_valid_order():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        check_stage_order(load_config(path))


def test_every_stage_declares_what_it_provides():
    assert all(spec.provides or spec.name == "bench" for spec in STAGES.values())


def test_validate_command_reports_the_order_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("teacher: {model: packaged:minilm-l6}\ndata: {train: 'builtin:pydoc'}\nstages: [distill, quantize]\n")
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(cfg)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "put export before it" in err and "Traceback" not in err
