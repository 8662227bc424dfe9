"""package is a registered stage: it reuses the export's model.onnx (one ONNX export per run), and every stage of a
run returns exactly the outputs it declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.config import load_config
from compress.run.pipeline import check_provides, run_pipeline
from compress.run.stages import STAGES, StageContractError, get_stage, read_record, with_followers


def test_package_is_a_registered_stage_that_follows_export_and_search():
    spec = get_stage("package")
    assert spec.publish == ("final",) and set(spec.follows) == {"export", "search"}
    assert with_followers(["distill", "export", "quantize"]) == ["distill", "export", "quantize", "package"]
    assert with_followers(["distill", "search", "bench"])[-1] == "package"
    assert with_followers(["finetune", "distill"]) == ["finetune", "distill"]  # nothing exported: nothing shipped


def test_provides_check_names_the_stage_and_the_keys():
    spec = get_stage("export")
    check_provides(spec, {"onnx": "model.onnx", "tokenizer": "tokenizer", "bundle": "bundle"})
    with pytest.raises(StageContractError, match=r"stage 'export'.*missing \['tokenizer'\]"):
        check_provides(spec, {"onnx": "model.onnx"})
    with pytest.raises(StageContractError, match=r"stage 'export'.*undeclared \['stray'\]"):
        check_provides(spec, {"onnx": "model.onnx", "tokenizer": "tokenizer", "stray": "x"})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """distill -> export -> quantize -> bench (+ package) on a tiny teacher, counting ONNX exports."""
    from export import onnx_export
    from tests.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("package-stage")
    teacher = make_tiny_model(root / "teacher", "bert", "embedding")
    calls = []
    real = onnx_export.export_onnx
    mp = pytest.MonkeyPatch()
    mp.setattr(onnx_export, "export_onnx", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    cfg = load_config(None, base={
        "name": "p", "output_dir": str(root / "runs"), "stages": ["distill", "export", "quantize", "bench"],
        "teacher": {"model": str(teacher)}, "data": {"train": "builtin:pydoc", "max_train_samples": 64,
                                                     "max_eval_samples": 24},
        "student": {"num_layers": 1}, "distill": {"max_steps": 1, "batch_size": 8},
        "quantize": {"guard": {"eval_samples": 16}},
        "bench": {"min_runs": 1, "min_seconds": 0, "warmup": 0, "max_eval_samples": 24}})
    try:
        outcomes = run_pipeline(cfg)
    finally:
        mp.undo()
    return cfg, outcomes, calls


def test_a_default_run_exports_model_onnx_once(tiny_run):
    cfg, outcomes, calls = tiny_run
    assert [o.name for o in outcomes] == ["distill", "export", "quantize", "bench", "package"]
    assert len(calls) == 1, calls  # the export stage's; final/ reuses its file
    final = cfg.run_dir / "final"
    package = json.loads((final / "package.json").read_text())
    assert package["chosen"]["origin"] in ("quantize", "export")
    fp32 = final / "onnx" / "model.onnx"
    assert fp32.read_bytes() == (outcomes[1].dir / "model.onnx").read_bytes()
    assert fp32.stat().st_ino == (outcomes[-1].dir / "final" / "onnx" / "model.onnx").stat().st_ino  # published


def test_every_stage_returned_what_it_declares(tiny_run):
    _, outcomes, _ = tiny_run
    for o in outcomes:
        rec, _ = read_record(o.dir)
        spec = STAGES[o.name]
        assert set(spec.provides) <= set(rec.outputs) <= set(spec.provides) | set(spec.optional), o.name


def test_package_command_reruns_the_stage_and_a_run_then_skips_it(tiny_run):
    from compress.cli.main import main

    cfg, outcomes, _ = tiny_run
    (cfg.run_dir / "final" / "README.md").unlink()
    main(["package", str(cfg.run_dir)])
    assert (cfg.run_dir / "final" / "README.md").is_file()
    again = run_pipeline(cfg)
    assert [o.status for o in again] == ["skipped"] * 5


def test_package_does_not_import_the_pipeline():
    """No import cycle package <-> pipeline: the stage module loads without the orchestrator."""
    import subprocess
    import sys

    code = "import sys, compress.package.stage; print('compress.run.pipeline' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    source = __import__("inspect").getsource(__import__("compress.package.stage", fromlist=["x"]))
    assert "compress.run.pipeline" not in source


def test_a_run_writes_outside_its_stage_folders_only_where_specs_declare(tiny_run):
    """Besides NN-stage/ folders, a run folder holds the pipeline's own files, the stages' published copies and
    the work folders their specs declare (work_dirs) — nothing else."""
    from compress.run.pipeline import LOCK_FILE, LOG_FILE

    cfg, outcomes, _ = tiny_run
    run_dir = cfg.run_dir
    allowed = {o.dir for o in outcomes} | {run_dir / n for n in (LOCK_FILE, LOG_FILE, "config.resolved.yaml", "data")}
    for o in outcomes:
        spec, (rec, _) = STAGES[o.name], read_record(o.dir)
        allowed |= {run_dir / Path(rec.outputs[k]).name for k in spec.publish if k in rec.outputs}
        allowed |= {Path(d) for d in spec.call("work_dirs", cfg, run_dir) or ()}
    assert sorted(p.name for p in run_dir.iterdir() if p not in allowed) == []
