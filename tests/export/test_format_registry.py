"""Export formats are a registry (export.writer.WRITERS): every format but onnx has a writer, each runs alone."""

import pytest

from export.heads import FILE_NAMES, FORMATS
from export.writer import WRITERS, Written


def test_every_format_has_a_writer_and_a_file_name():
    assert set(WRITERS) == set(FORMATS) - {"onnx"}
    assert set(FILE_NAMES) == set(FORMATS)


@pytest.mark.parametrize("fmt", ["ort", "torchscript", "ptl"])
def test_each_writer_alone_writes_its_file_with_parity(fmt, tiny_model_dir, tmp_path):
    from export.core import prepare
    from export.onnx_export import export_onnx

    prep = prepare(tiny_model_dir("bert", "embedding"), "embedding")
    onnx_path = tmp_path / FILE_NAMES["onnx"]
    export_onnx(prep, onnx_path, 17)
    done = Written()
    WRITERS[fmt].write(prep, onnx_path, tmp_path / FILE_NAMES[fmt], done)
    assert (tmp_path / FILE_NAMES[fmt]).is_file()
    assert done.metrics[f"parity_{fmt}"]["min_cosine"] > 0.999


def test_pte_refuses_before_any_work_when_executorch_is_missing(monkeypatch):
    import export.mobile as mobile
    from export.errors import FormatUnavailableError

    monkeypatch.setattr(mobile, "executorch_available", lambda: (False, "executorch is not installed"))
    with pytest.raises(FormatUnavailableError, match="cannot write .pte: executorch is not installed"):
        WRITERS["executorch"].preflight()
