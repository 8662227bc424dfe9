"""The quantize report's contract: what a tiny run writes validates against report.schema.json, a broken report is
refused naming the field, and the typed view (QuantizeReport) reads and writes back the same JSON."""

from __future__ import annotations

import copy
import json
import re

import pytest

from compress.core.errors import EdgepressError
from compress.quantize.api import quantize_onnx
from compress.quantize.report import QuantizeReport, validate_report
from tests.quantize.sample_report import method_result, sample_report
from tests.quantize.test_quantize import _cfg, _corpus, tiny_embedding  # noqa: F401  (fixture)


@pytest.fixture
def tiny_report(tiny_embedding, tmp_path) -> dict:  # noqa: F811
    """quantize_report.json of a tiny run: a calibrated method, a weight-only one and a 4-bit embedding table."""
    onnx_path, tok = tiny_embedding
    quantize_onnx(onnx_path, tmp_path / "out", ["dynamic", "static", "int4"], tok, calibration=_corpus(),
                  eval_data=_corpus(), config=_cfg(calibration_samples=8, embedding={"bits": 4}))
    return json.loads((tmp_path / "out" / "quantize_report.json").read_text())


def test_tiny_run_report_validates_and_round_trips(tiny_report):
    validate_report(tiny_report)
    typed = QuantizeReport.from_dict(tiny_report)
    assert typed.to_dict() == tiny_report
    assert list(typed.methods) == ["dynamic", "static", "int4"]
    static = typed.methods["static"]
    assert static.calibration_rows_yielded == tiny_report["methods"]["static"]["calibration_rows_yielded"]
    assert static.chosen_attempt.settings["method"] == "static"
    assert static.chosen_attempt.scores["embedding_table"]["bits"] == 4  # the quantizer's details stay with it
    assert typed.methods["int4"].latency.ratio == tiny_report["methods"]["int4"]["latency"]["ratio"]
    assert typed.recommended.is_fp32 == (tiny_report["recommended"]["path"] is None)
    assert [v.path for v in typed.variants] == [r.path for r in typed.methods.values()]


@pytest.mark.parametrize("drop,where", [(("methods", "dynamic", "size_mb"), "methods/dynamic"),
                                        (("recommended", "reason"), "recommended"),
                                        (("methods", "static", "attempts", 0, "retention"), "methods/static/attempts/0"),
                                        (("fp32_size_mb",), "(top level)")])
def test_missing_required_field_is_named(tiny_report, drop, where):
    broken = copy.deepcopy(tiny_report)
    parent = broken
    for key in drop[:-1]:
        parent = parent[key]
    del parent[drop[-1]]
    with pytest.raises(EdgepressError, match=rf"at {re.escape(where)}: '{drop[-1]}' is a required property"):
        validate_report(broken)
    with pytest.raises(EdgepressError, match=rf"'{'/'.join(map(str, drop))}' is missing"):
        QuantizeReport.from_dict(broken)


def test_wrong_type_and_unknown_method_are_refused(tiny_report):
    bad = copy.deepcopy(tiny_report)
    bad["methods"]["dynamic"]["meets_floor"] = "yes"
    with pytest.raises(EdgepressError, match="at methods/dynamic/meets_floor: 'yes' is not of type 'boolean'"):
        validate_report(bad)
    bad = copy.deepcopy(tiny_report)
    bad["methods"]["int3"] = bad["methods"].pop("int4")
    with pytest.raises(EdgepressError, match="'int3' is not one of"):
        validate_report(bad)


def test_sample_report_for_reader_tests_is_schema_valid():
    """The hand-made report other tests feed the readers (CLI headline, package) follows the schema too."""
    report = sample_report({"dynamic": method_result("dynamic", 0.98, 21.7),
                            "fp16": method_result("fp16", 1.0, 43.0, precision="fp16")}, "dynamic")
    validate_report(report)
    typed = QuantizeReport.from_dict(report)
    assert typed.to_dict() == report and typed.recommended_result is typed.methods["dynamic"]
    assert [r.variant for r in typed.int8_passing()] == ["student-int8-dynamic"]
