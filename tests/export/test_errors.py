"""Bad input fails with a clear EdgepressError naming what to change."""

from __future__ import annotations

import pytest

from compress.core.errors import EdgepressError, ModelLoadError, ParityError


def test_unsupported_head_is_refused(tiny_model_dir, tmp_path):
    from export.api import export_model
    from export.errors import UnsupportedHeadError
    from export.heads import HEADS

    with pytest.raises(UnsupportedHeadError, match="supported heads: embedding") as err:
        export_model(tiny_model_dir("bert", "mlm"), tmp_path / "o", "text-generation", ["onnx"])
    assert isinstance(err.value, EdgepressError) and len(HEADS) == 6
    with pytest.raises(UnsupportedHeadError, match="unknown export format 'tflite'"):
        export_model(tiny_model_dir("bert", "mlm"), tmp_path / "o", "mlm", ["tflite"])
    assert not (tmp_path / "o").exists()


def test_missing_head_weights_are_refused(tiny_model_dir, tmp_path):
    from export.api import export_model

    with pytest.raises(ModelLoadError, match="no trained mlm head"):
        export_model(tiny_model_dir("bert", "embedding"), tmp_path / "o", "mlm", ["onnx"])
    assert len(list((tmp_path / "o").iterdir())) == 0


@pytest.mark.parametrize("opset,match", [(21, "writes opsets 7..20"), (12, "needs opset >= 14"), (99, "writes opsets")])
def test_opset_the_exporter_or_runtime_lacks(tiny_model_dir, tmp_path, opset, match):
    from export.api import export_model
    from export.errors import OpsetError

    with pytest.raises(OpsetError, match=match):
        export_model(tiny_model_dir("bert", "mlm"), tmp_path / "o", "mlm", ["onnx"], opset=opset)
    assert not (tmp_path / "o").exists()


def test_existing_output_dir_needs_overwrite(tiny_model_dir, tmp_path):
    from export.api import export_model
    from export.errors import OutputExistsError

    out = tmp_path / "o"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_model(tiny_model_dir("bert", "regression"), out, "regression", ["onnx"])
    assert (out / "old.txt").read_text() == "keep me"
    res = export_model(tiny_model_dir("bert", "regression"), out, "regression", ["onnx"], overwrite=True)
    assert not (out / "old.txt").exists() and res["metrics"]["parity_onnx"]["max_abs_diff"] < 1e-4


def test_parity_error_on_a_file_from_another_model(tiny_model_dir, tmp_path):
    from export.core import prepare
    from export.onnx_export import export_onnx
    from export.parity import onnx_runner
    from tests.tiny import make_tiny_model

    other = make_tiny_model(tmp_path / "other", "bert", "embedding", seed=1)
    prep_other = prepare(other, "embedding")
    export_onnx(prep_other, tmp_path / "other.onnx")
    prep = prepare(tiny_model_dir("bert", "embedding"), "embedding")
    with pytest.raises(ParityError, match="disagrees with PyTorch: max \\|diff\\|"):
        prep.check("ONNX file 'other.onnx'", onnx_runner(str(tmp_path / "other.onnx"), prep.output_names))
    measured = prep.check("other, measured only", onnx_runner(str(tmp_path / "other.onnx"), prep.output_names),
                          enforce=False)
    assert measured["max_abs_diff"] > 1e-2


def test_quantized_onnx_must_be_quantized_and_match(tiny_model_dir, tmp_path):
    from export.api import export_model
    from export.errors import ExportError

    model_dir = tiny_model_dir("bert", "classification")
    plain = export_model(model_dir, tmp_path / "plain", "classification", ["onnx"])
    with pytest.raises(ExportError, match="contains no quantized operators"):
        export_model(model_dir, tmp_path / "b", "classification", ["onnx"], bundle=True,
                     quantized_onnx=plain["files"]["onnx"])
    assert plain["metrics"]["parity_onnx"]["max_abs_diff"] < 1e-4
