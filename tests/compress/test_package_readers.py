"""The package stage reads other stages' reports through their typed readers: the search winner as a Candidate
(compress/search/candidates.schema.json), the quantize report as a QuantizeReport; a record missing a field is
refused naming it instead of shipping a default."""

from __future__ import annotations

import pytest

from compress.core.errors import EdgepressError
from compress.package.stage import choose, search_winner
from compress.run.stages import StageRecord, Variant
from compress.search.select import Candidate
from tests.quantize.sample_report import method_result, sample_report


def _winner(**kw) -> Candidate:
    return Candidate(name="d2-p30/student-litert-int8", path="/x/model.tflite", depth=2, prune_ratio=0.3,
                     precision="int8", size_mb=3.5, p50_ms=1.2, retention=0.98, on_front=True, verdict="winner",
                     runtime="litert", **kw)


def _search(tmp_path, winner: dict) -> StageRecord:
    return StageRecord("search", tmp_path / "02-search", {"winner_model": "winner/model", "onnx": "winner/model.onnx"},
                       {"candidates": 3, "winner": winner},
                       [Variant("search-winner (d2-p30/student-litert-int8)", "litert", "winner/export/m.tflite",
                                "int8")])


def test_search_winner_is_read_as_a_candidate(tmp_path):
    rec = _search(tmp_path, _winner(head_ratio=0.2).to_dict())
    assert search_winner(rec) == _winner(head_ratio=0.2)
    got = choose([rec])
    assert (got.name, got.precision, got.runtime, got.origin) == ("d2-p30/student-litert-int8", "int8", "litert",
                                                                  "search winner")
    assert got.file == tmp_path / "02-search" / "winner/export/m.tflite" and got.onnx_precision == "fp32"


@pytest.mark.parametrize("field", ["precision", "name"])
def test_search_winner_missing_a_field_is_named_not_defaulted(tmp_path, field):
    """Before, a winner without ``precision`` shipped as fp32 and one without ``name`` as 'search-winner'."""
    winner = _winner().to_dict()
    del winner[field]
    with pytest.raises(EdgepressError, match=rf"'winner/{field}' is missing"):
        choose([_search(tmp_path, winner)])


def test_search_record_without_a_winner_is_refused(tmp_path):
    rec = _search(tmp_path, {})
    del rec.metrics["winner"]
    with pytest.raises(EdgepressError, match="metrics name no 'winner'; rerun with --force search"):
        choose([rec])


def test_quantize_pick_reads_the_typed_report(tmp_path):
    """Without a recommended file the package ships the smallest INT8 file that met the floor (QuantizeReport)."""
    report = sample_report({"dynamic": method_result("dynamic", 0.98, 21.7),
                            "static": method_result("static", 0.975, 20.1)}, None)
    quant = StageRecord("quantize", tmp_path / "03-quantize", {"report": "quantize_report.json"}, report, [])
    distill = StageRecord("distill", tmp_path / "01-distill", {"model": "model"}, {}, [])
    got = choose([distill, quant])
    assert (got.origin, got.precision, got.name) == ("quantize", "int8", report["methods"]["static"]["variant"])
    assert got.onnx == tmp_path / "03-quantize" / report["methods"]["static"]["path"]
