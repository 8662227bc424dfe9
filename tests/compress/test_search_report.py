"""The search report's contract: the candidates.json a tiny search writes validates against
compress/search/candidates.schema.json, reads back through SearchReport / Candidate to the same JSON, and what the
package stage reads of the search (its winner) comes through the same types; a broken report is refused naming the
field."""

from __future__ import annotations

import copy
import json
import re

import pytest

from compress.core.errors import EdgepressError
from compress.search.report import SearchReport, TeacherSummary, load_schema, validate_report
from compress.search.select import Candidate, choose


def test_tiny_search_report_validates_round_trips_and_feeds_the_package(tiny_model_dir, shared_data, tmp_path):
    """distill -> search (fp32 + int8 of one branch) -> package: candidates.json follows its schema, types back to
    the same JSON, and the package ships the candidate the typed report names as the winner."""
    import jsonschema

    from compress.config import RunConfig
    from compress.package.stage import search_winner
    from compress.run.pipeline import run_pipeline
    from compress.run.stages import read_record
    from tests.tiny import sts_run_config

    cfg = RunConfig.model_validate(sts_run_config(
        tiny_model_dir("bert", "embedding"), shared_data, tmp_path, name="sr", stages=["distill", "search"],
        prune={"round_to": 4},
        search={"prune_ratios": [0.0], "quantize": ["dynamic"], "max_eval_samples": 16,
                "targets": {"retention_floor": 0.01}},
        quantize={"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}},
        bench={"warmup": 0, "min_runs": 2, "min_seconds": 0.0, "threads": 1}))
    run_pipeline(cfg)
    path = cfg.run_dir / "02-search" / "candidates.json"
    data = json.loads(path.read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    validate_report(data)
    typed = SearchReport.load(path)
    assert typed.to_dict() == data
    assert [c.name for c in typed.candidates] == ["d1-p00/student-fp32-opt", "d1-p00/student-int8-dynamic"]
    assert all(c.measured and c.p50_ms > 0 and c.runtime == "onnxruntime" for c in typed.candidates)
    assert typed.teacher.p50_ms == data["teacher"]["p50_ms"] > 0 and typed.teacher.p50_ms_local is None
    assert typed.winner_candidate is not None and typed.winner_candidate.name == data["winner"]
    assert typed.meets_targets and typed.select_on == cfg.search.select_on == "eval"
    record, _ = read_record(cfg.run_dir / "02-search")
    assert search_winner(record) == typed.winner_candidate  # stage.json's winner is the same row, typed alike
    assert TeacherSummary.from_dict(record.metrics["teacher"]) == typed.teacher
    package = json.loads((cfg.run_dir / "final" / "package.json").read_text())
    assert package["chosen"]["name"] == typed.winner and package["chosen"]["precision"] == typed.winner_candidate.precision


def _c(name: str, p50: float | None, ret: float | None, **kw) -> Candidate:
    return Candidate(name=name, path=f"{name}.onnx", depth=2, prune_ratio=0.3, precision="int8", size_mb=4.0,
                     p50_ms=p50, retention=ret, **kw)


@pytest.fixture
def remote_report() -> dict:
    """A hand-made report of a remote target (teacher timed here only) with one failed candidate."""
    cands = [_c("d2-p30/student-int8-dynamic", 1.5, 0.98, head_ratio=0.2),
             _c("d2-p30/student-litert", 2.5, 0.99, runtime="litert"), _c("d2-p50/student-fp32", None, None,
                                                                             status="error")]
    choice = choose(cands, floor=0.97)
    teacher = TeacherSummary(name="teacher", format="pytorch", size_mb=90.0, metric="spearman", value=0.8,
                             test_value=0.82, p50_ms=None, p50_ms_local=12.0)
    targets = {"retention_floor": 0.97, "latency_budget_ms": None, "max_size_mb": None, "device": "ssh://pi@h",
               "batch": 1}
    return SearchReport.of(cands, choice, teacher, targets, "ssh://pi@h: Cortex-A76", "eval").to_dict()


def test_hand_made_report_validates_and_round_trips(remote_report):
    validate_report(remote_report)
    typed = SearchReport.from_dict(copy.deepcopy(remote_report))
    assert typed.to_dict() == remote_report
    assert typed.teacher.p50_ms is None and typed.teacher.p50_ms_local == 12.0
    assert typed.winner == "d2-p30/student-int8-dynamic" and typed.winner_candidate.head_ratio == 0.2
    assert [c.verdict for c in typed.candidates][2] == "not measured (error)"


@pytest.mark.parametrize("drop,where", [(("candidates", 1, "retention"), "candidates/1"),
                                        (("teacher", "metric"), "teacher"),
                                        (("reason",), "(top level)")])
def test_missing_required_field_is_named(remote_report, drop, where):
    broken = copy.deepcopy(remote_report)
    parent = broken
    for key in drop[:-1]:
        parent = parent[key]
    del parent[drop[-1]]
    with pytest.raises(EdgepressError, match=rf"at {re.escape(where)}: '{drop[-1]}' is a required property"):
        validate_report(broken)
    with pytest.raises(EdgepressError, match=rf"'{'/'.join(map(str, drop))}' is missing"):
        SearchReport.from_dict(broken)


def test_wrong_values_and_unknown_fields_are_refused(remote_report):
    bad = copy.deepcopy(remote_report)
    bad["candidates"][0]["runtime"] = "tensorrt"
    with pytest.raises(EdgepressError, match="at candidates/0/runtime: 'tensorrt' is not one of"):
        validate_report(bad)
    bad = copy.deepcopy(remote_report)
    bad["candidates"][0]["on_front"] = "yes"
    with pytest.raises(EdgepressError, match="at candidates/0/on_front: 'yes' is not of type 'boolean'"):
        validate_report(bad)
    bad = copy.deepcopy(remote_report)
    bad["candidates"][2]["speedup"] = 2.0
    with pytest.raises(EdgepressError, match=r"at candidates/2: Additional properties"):
        validate_report(bad)
    with pytest.raises(EdgepressError, match="'candidates/2/speedup' is not a candidate field"):
        SearchReport.from_dict(bad)


def test_schema_lists_every_runtime_and_target_field():
    """The schema's runtime enum and targets keys are the search config's, so a new runtime or target needs both."""
    from compress.search.config import RUNTIME_FORMATS, SearchTargets

    schema = load_schema()
    assert schema["$defs"]["candidate"]["properties"]["runtime"]["enum"] == list(RUNTIME_FORMATS)
    assert sorted(schema["properties"]["targets"]["required"]) == sorted(SearchTargets.model_fields)
    assert sorted(schema["$defs"]["candidate"]["required"]) == sorted(Candidate.__dataclass_fields__)
    assert sorted(schema["$defs"]["teacher"]["properties"]) == sorted(TeacherSummary.__dataclass_fields__)
