"""Run directory semantics: stage.json per stage, skip when unchanged, --force, resume after a crash."""

import json

import pytest

from compress.run import stages as registry
from compress.config import load_config
from compress.core.errors import EdgepressError, RunInterrupted
from compress.run.pipeline import run_pipeline
from compress.run.schema import validate_stage_dir
from compress.run.stages import StageResult, StageSpec, Variant

CALLS: list[str] = []
FAIL: set[str] = set()


def stage_a(cfg, inputs, out_dir):
    CALLS.append("a")
    (out_dir / "a.txt").write_text(str(cfg.seed))
    return StageResult(outputs={"model": "a.txt"}, metrics={"value": cfg.seed}, variants=[Variant("a", "pytorch", "a.txt")])


def stage_b(cfg, inputs, out_dir):
    CALLS.append("b")
    upstream = inputs.require("model", "b").read_text()
    (out_dir / "partial.txt").write_text("half")
    if "b" in FAIL:
        raise KeyboardInterrupt  # a killed run
    (out_dir / "b.txt").write_text(upstream + "+b")
    return StageResult(outputs={"onnx": "b.txt"}, metrics={"n_variants": len(inputs.variants())})


@pytest.fixture
def fake_stages(monkeypatch):
    CALLS.clear()
    FAIL.clear()
    monkeypatch.setitem(registry.STAGES, "a", StageSpec("a", f"{__name__}:stage_a", ("seed",), "test a",
                                                                provides=("model",)))
    monkeypatch.setitem(registry.STAGES, "b", StageSpec("b", f"{__name__}:stage_b", ("bench",), "test b",
                                                                needs=("model",), provides=("onnx",)))


def _cfg(tmp_path, *extra):
    return load_config(None, ["teacher.model=x", "data.train=y", "name=t", f"output_dir={tmp_path}",
                              "stages=[a, b]", *extra])


def test_stage_json_written_and_second_run_skips(fake_stages, tmp_path):
    out = run_pipeline(_cfg(tmp_path))
    assert [o.status for o in out] == ["ran", "ran"]
    meta = json.loads((tmp_path / "t" / "01-a" / "stage.json").read_text())
    assert meta["metrics"] == {"value": 42} and meta["outputs"] == {"model": "a.txt"}
    assert {"config_hash", "versions", "wall_s", "machine", "inputs"} <= set(meta)
    assert (tmp_path / "t" / "02-b" / "b.txt").read_text() == "42+b"
    assert json.loads((tmp_path / "t" / "02-b" / "stage.json").read_text())["metrics"]["n_variants"] == 1
    for stage_dir in ("01-a", "02-b"):
        validate_stage_dir(tmp_path / "t" / stage_dir)  # compress/run/stage.schema.json
    out = run_pipeline(_cfg(tmp_path))
    assert [o.status for o in out] == ["skipped", "skipped"] and CALLS == ["a", "b"]


def test_changing_a_section_reruns_that_stage_and_later_ones(fake_stages, tmp_path):
    run_pipeline(_cfg(tmp_path))
    CALLS.clear()
    out = run_pipeline(_cfg(tmp_path, "bench.min_runs=3"))
    assert [o.status for o in out] == ["skipped", "ran"] and CALLS == ["b"]
    CALLS.clear()
    out = run_pipeline(_cfg(tmp_path, "bench.min_runs=3", "seed=7"))
    assert [o.status for o in out] == ["ran", "ran"]
    assert (tmp_path / "t" / "02-b" / "b.txt").read_text() == "7+b"


def test_force_redoes_a_stage(fake_stages, tmp_path):
    run_pipeline(_cfg(tmp_path))
    CALLS.clear()
    out = run_pipeline(_cfg(tmp_path), force={"a"})
    assert CALLS == ["a", "b"] and [o.status for o in out] == ["ran", "ran"]
    with pytest.raises(EdgepressError, match="not in this config's stages"):
        run_pipeline(_cfg(tmp_path), force={"distill"})


def test_killed_stage_leaves_no_complete_looking_dir_and_resumes(fake_stages, tmp_path):
    FAIL.add("b")
    with pytest.raises(RunInterrupted, match="stage 'b'"):
        run_pipeline(_cfg(tmp_path))
    run_dir = tmp_path / "t"
    assert (run_dir / "01-a" / "stage.json").is_file()
    assert not (run_dir / "02-b").exists()  # only a hidden .tmp holds the half stage
    FAIL.clear()
    CALLS.clear()
    out = run_pipeline(_cfg(tmp_path))
    assert [o.status for o in out] == ["skipped", "ran"] and CALLS == ["b"]
    assert (run_dir / "02-b" / "b.txt").read_text() == "42+b"
    assert not any(p.name.endswith(".tmp") for p in run_dir.iterdir())


def test_keys_a_stage_does_not_read_do_not_redo_it():
    """finetune never reads data.unlabeled: adding distillation text must not retrain the teacher."""
    from compress.run.pipeline import stage_hash

    base = ["teacher.model=x", "data.train=y"]
    a = load_config(None, base)
    b = load_config(None, [*base, "data.unlabeled=[{source: z.txt}]"])
    assert stage_hash(a, "finetune", "") == stage_hash(b, "finetune", "")
    assert stage_hash(a, "distill", "") != stage_hash(b, "distill", "")
    assert stage_hash(a, "finetune", "") != stage_hash(load_config(None, [*base, "data.max_train_samples=5"]),
                                                      "finetune", "")


def stage_bench(cfg, inputs, out_dir):
    CALLS.append("bench")
    for name in ("report.json", "report.md", "report.csv"):
        (out_dir / name).write_text(f"{name} of seed {cfg.seed}")
    return StageResult(outputs={"json": "report.json", "md": "report.md", "csv": "report.csv"})


def test_pipeline_copies_the_bench_report_into_the_run_folder(fake_stages, monkeypatch, tmp_path):
    monkeypatch.setitem(registry.STAGES, "bench", StageSpec("bench", f"{__name__}:stage_bench", ("seed",), "test bench",
                                                                    provides=("json", "md", "csv"),
                                                                    publish=("json", "md", "png")))
    cfg = _cfg(tmp_path, "stages=[a, bench]")
    run_pipeline(cfg)
    run_dir = tmp_path / "t"
    assert (run_dir / "report.json").read_text() == "report.json of seed 42"
    assert (run_dir / "report.md").read_text() == "report.md of seed 42"
    assert not (run_dir / "report.csv").exists()  # json, md and png only
    (run_dir / "report.json").unlink()
    out = run_pipeline(cfg)
    assert [o.status for o in out] == ["skipped", "skipped"] and CALLS == ["a", "bench"]
    assert (run_dir / "report.json").read_text() == "report.json of seed 42"  # restored from 02-bench
    run_pipeline(_cfg(tmp_path, "stages=[a, bench]", "seed=7"))
    assert (run_dir / "report.json").read_text() == "report.json of seed 7"


def test_the_teacher_folder_is_checked_before_a_run_only_for_stages_that_load_it(tmp_path):
    """quantize reads the teacher only for QAT and export only to export it too: a missing teacher folder does not stop
    them; distill, or QAT, or include_teacher, are refused before any work."""
    from compress.core.errors import EdgepressError
    from compress.run.pipeline import preflight

    base = [f"teacher.model={tmp_path / 'missing'}", "data.train=y"]
    cfg = load_config(None, base)
    preflight(cfg, ["quantize"])
    preflight(cfg, ["export"])
    for stages, extra in ((["distill"], []), (["quantize"], ["quantize.methods=[qat]"]),
                          (["export"], ["export.include_teacher=true"])):
        with pytest.raises(EdgepressError, match="missing"):
            preflight(load_config(None, [*base, *extra]), stages)
