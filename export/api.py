"""Python API behind ``edgepress export``: one call writes every asked format (and optionally a bundle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from export.parity import DEFAULT_ATOL, DEFAULT_RTOL


def export_model(model_dir: Path, out_dir: Path, task: str, formats: list[str], opset: int = 17,
                 optimize: bool = False, bundle: bool = False, overwrite: bool = False, max_length: int | None = None,
                 atol: float = DEFAULT_ATOL, quantized_onnx: Path | None = None,
                 rtol: float = DEFAULT_RTOL) -> dict[str, Any]:
    """Export ``model_dir`` (a save_pretrained folder with tokenizer) to ``formats`` in ``out_dir``, parity-checked.

    With ``bundle`` the folder is an app bundle (tokenizer/, labels.json, manifest.json, reference.py);
    without it, model files plus ``tokenizer/``. Returns written file paths and metrics (parity, sizes,
    fused-op counts). ``rtol``/``atol``: the parity bound (export.parity.Tolerance).
    """
    from export.bundle import build_bundle, prepare_out_dir
    from export.core import prepare
    from export.heads import get_head
    from export.onnx_export import check_opset
    from export.writer import write_formats

    from export.heads import canonical_format

    out_dir, model_dir = Path(out_dir), Path(model_dir)
    formats = [canonical_format(f) for f in formats]
    for fmt in formats:
        get_head(task, fmt)
    check_opset(opset)
    prepare_out_dir(out_dir, overwrite)
    prep = prepare(model_dir, task, max_length, atol, rtol=rtol)
    written = write_formats(prep, out_dir, formats, opset, optimize)
    result: dict[str, Any] = {"out_dir": str(out_dir),
                              "files": {k: str(v) for k, v in {**written.files, **written.extra}.items()},
                              "metrics": written.metrics}
    for fmt, by_precision in written.precisions.items():  # a runtime's INT8 / fp16 files: <format>_<precision>
        result["files"].update({f"{fmt}_{precision}": str(path) for precision, path in by_precision.items()})
    if bundle:
        manifest = build_bundle(prep, written, out_dir, opset, quantized_onnx)
        result["manifest"] = str(out_dir / "manifest.json")
        result["files"]["reference"] = str(out_dir / "reference.py")
        result["models"] = manifest["models"]
    else:
        if quantized_onnx is not None:
            from export.errors import ExportError

            raise ExportError("quantized_onnx is only used in a bundle; pass bundle=True (--bundle)")
        prep.tokenizer.save_pretrained(str(out_dir / "tokenizer"))
        from export.stage import optimum_layout

        optimum_layout(prep, out_dir)
    result["files"]["tokenizer"] = str(out_dir / "tokenizer")
    return result
