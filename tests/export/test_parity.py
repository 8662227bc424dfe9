"""The parity bound: relative to the output's magnitude, growing with depth and sqrt(length), still a hard error."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from compress.core.errors import ParityError
from export.parity import Tolerance, check_parity


def _outputs(rng: np.random.Generator, length: int, scale: float) -> list[np.ndarray]:
    """A last_hidden_state-like (batch 2, length, 16) and a sentence_embedding-like (2, 16) output."""
    return [rng.normal(0, 1, (2, length, 16)) * scale, rng.normal(0, 1, (2, 16)) * scale / 30]


def _perturbed(expected: list[np.ndarray], rel: float):
    """A runner whose every output is off by ``rel`` x the output's largest |value| at one element."""

    def run(batch: dict) -> list[np.ndarray]:
        out = [e.copy() for e in expected]
        for o in out:
            o.flat[0] += rel * np.abs(o).max()
        return out

    return run


def test_bound_scales_with_magnitude_depth_and_sqrt_length():
    tol = Tolerance(rtol=2e-6, atol=1e-6, min_cosine=0.9999, depth=6)
    assert tol.allowed(6.0, 256) == pytest.approx(1e-6 + 2e-6 * 6 * 16 * 6.0)
    assert tol.allowed(6.0, 256) / tol.allowed(6.0, 64) == pytest.approx(2.0, rel=1e-3)  # sqrt(length)
    assert Tolerance(depth=12).allowed(1.0, 100) - 1e-6 == pytest.approx(2 * (Tolerance(depth=6).allowed(1.0, 100) - 1e-6))
    assert tol.allowed(0.0, 256) == pytest.approx(1e-6)  # an all-zero output still gets the absolute slack


@pytest.mark.parametrize("rel,depth,length,fails", [
    (1.8e-5, 6, 256, False),  # the worst relative difference measured on the stock MiniLM-L6 teacher at length 256
    (1.8e-5, 1, 4, True),  # the same difference on a 1-layer model at length 4 is far past its bound
    (1.1e-3, 6, 256, True),  # a tanh-approximated GELU measured 1.1e-3 on MiniLM-L6 at length 256
    (5.0, 6, 256, True),  # a wrong pooling measured 3.5..6.5
])
def test_check_parity_passes_rounding_and_fails_real_differences(rel, depth, length, fails):
    expected = _outputs(np.random.default_rng(0), length, scale=6.0)
    batch = {"input_ids": np.zeros((2, length), dtype=np.int64)}
    tol = Tolerance(depth=depth)
    args = ("ONNX file 'model.onnx'", [expected], _perturbed(expected, rel), [batch],
            ["last_hidden_state", "sentence_embedding"], tol)
    if fails:
        with pytest.raises(ParityError, match=r"max \|diff\| .* at length .* relative .* Do not ship this file"):
            check_parity(*args)
    else:
        got = check_parity(*args)
        assert got["max_rel_diff"] == pytest.approx(rel, rel=1e-6)
        assert 0 < got["bound_used"] < 1 and got["sequence_lengths"] == [length]
    measured = check_parity(*args, enforce=False)  # measured either way, raised only when enforced
    biggest = np.abs(expected[0]).max()  # the larger output: the atol is the smaller part of its bound
    assert measured["bound_used"] == pytest.approx(rel * biggest / tol.allowed(biggest, length), rel=1e-6)


def test_low_cosine_fails_even_within_the_absolute_bound():
    expected = [np.array([[1e-7, 0.0], [0.0, 1e-7]])]  # tiny values: the atol alone covers their difference
    flipped = [np.array([[0.0, 1e-7], [1e-7, 0.0]])]
    batch = {"input_ids": np.zeros((2, 8), dtype=np.int64)}
    with pytest.raises(ParityError, match="min cosine 0.000000"):
        check_parity("file", [expected], lambda b: flipped, [batch], ["logits"], Tolerance(depth=2))


def _st_folder(folder: Path, pooling: str) -> Path:
    from tests.compress.test_package import make_st_teacher

    return make_st_teacher(folder, pooling=pooling, normalize=True, max_seq_length=128)


def test_wrong_pooling_fails_on_a_tiny_sentence_transformers_model(tmp_path):
    """The export's pooling is read from the folder; if it pooled otherwise (mean for a CLS model), parity fails."""
    from compress.model.interface import ModelInterface
    from export.core import prepare
    from export.onnx_export import export_onnx

    folder = _st_folder(tmp_path / "cls", "cls")
    right = prepare(folder, "embedding")
    assert right.interface.pooling_modes == ["cls"] and right.tolerance.depth == 2
    assert export_onnx(right, tmp_path / "right.onnx")["bound_used"] < 0.1
    wrong = prepare(folder, "embedding", interface=ModelInterface("embedding", pooling="mean", normalize=True,
                                                                  max_seq_length=128, sentence_transformers=True))
    with pytest.raises(ParityError, match="on 'sentence_embedding'"):
        export_onnx(wrong, tmp_path / "wrong.onnx")


@pytest.mark.integration
def test_stock_teacher_exports_through_the_cli_at_length_256(minilm_path, tmp_path, capsys):
    """`edgepress export packaged:minilm-l6 OUT`: the unmodified 6-layer teacher passes at its max length 256."""
    from compress.cli.main import main

    out = tmp_path / "out"
    main(["export", "packaged:minilm-l6", str(out)])
    err = capsys.readouterr().err
    metrics = json.loads((out / "stage.json").read_text())["metrics"]
    parity = metrics["student"]["parity_onnx"]
    assert 256 in parity["sequence_lengths"] and parity["max_abs_diff"] > 0 and parity["enforced"] is True
    assert parity["min_cosine"] > 0.9999 and 0 < parity["bound_used"] == metrics["bound_used"] < 0.5
    assert (out / "model.onnx").is_file() and "max_rel_diff" in err and "bound_used" in err


@pytest.mark.integration
def test_cls_pooling_minilm_exported_with_mean_pooling_fails(minilm_path, tmp_path):
    """The regression the check caught: the MiniLM teacher with CLS pooling, exported pooling by mean."""
    from compress.model.interface import ModelInterface
    from export.core import prepare
    from export.onnx_export import export_onnx

    teacher = tmp_path / "minilm-cls"
    shutil.copytree(minilm_path, teacher)
    pooling = teacher / "1_Pooling" / "config.json"
    conf = json.loads(pooling.read_text())
    conf.update({k: False for k in conf if k.startswith("pooling_mode")}, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(conf))
    wrong = prepare(teacher, "embedding", interface=ModelInterface("embedding", pooling="mean", normalize=True,
                                                                   max_seq_length=256, sentence_transformers=True))
    assert wrong.tolerance.depth == 6 and wrong.max_length == 256
    with pytest.raises(ParityError, match="on 'sentence_embedding'") as err:
        export_onnx(wrong, tmp_path / "wrong.onnx")
    relative = float(str(err.value).split("relative ")[1].split(")")[0])
    assert relative > 100 * 2e-6 * 6 * math.sqrt(256)  # far past the bound, not a rounding question


def test_a_quantized_files_fidelity_is_recorded_and_refused_only_when_enforced():
    """One flipped sentence of 8 parity rows is 0.875 top-1 agreement: recorded as below the floor, not an error
    (the eval rows judge a quantized file); a file that must reproduce the model (enforce) fails."""
    import numpy as np

    from export.parity import check_fidelity

    ref = np.array([[2.0, 0.0]] * 8)
    flipped = ref.copy()
    flipped[3] = [0.0, 2.0]
    batch = {"input_ids": np.ones((8, 4), dtype=np.int64), "attention_mask": np.ones((8, 4), dtype=np.int64)}
    result = check_fidelity("INT8 file", "classification", [[ref]], lambda b: [flipped], [batch], ["logits"])
    assert result["fidelity"] == {"name": "top1_agreement", "value": 0.875} and result["meets_floor"] is False
    assert result["enforced"] is False and result["floor"] == 0.98
    with pytest.raises(ParityError, match="top1_agreement 0.8750 .* below the floor 0.98"):
        check_fidelity("INT8 file", "classification", [[ref]], lambda b: [flipped], [batch], ["logits"], enforce=True)
    same = check_fidelity("INT8 file", "classification", [[ref]], lambda b: [ref], [batch], ["logits"])
    assert same["meets_floor"] is True and same["fidelity"]["value"] == 1.0
