"""Write the asked formats for one prepared model into a folder, each proven equal to PyTorch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from compress.core.refs import resolve
from compress.model.formats import FORMAT_SPECS
from export.core import Prepared, Written  # noqa: F401 (Written: re-exported for importers)
from export.files import file_size
from export.heads import FILE_NAMES, get_head


def write_ort(prep: Prepared, onnx_path: Path, path: Path, done: Written) -> None:
    from export.onnx_export import convert_to_ort

    res = convert_to_ort(prep, onnx_path, path.parent)
    done.extra["ort_required_operators"] = res["config"]
    done.metrics["parity_ort"] = res["parity"]


def write_torchscript(prep: Prepared, onnx_path: Path, path: Path, done: Written) -> None:
    from export import mobile

    done.metrics["parity_torchscript"] = mobile.export_torchscript(prep, path)


def write_ptl(prep: Prepared, onnx_path: Path, path: Path, done: Written) -> None:
    from export import mobile

    done.metrics["parity_ptl"] = mobile.export_ptl(prep, path)


def write_pte(prep: Prepared, onnx_path: Path, path: Path, done: Written) -> None:
    from export import mobile

    done.metrics["parity_executorch"] = mobile.export_pte(prep, path)


def pte_ready() -> None:
    """.pte needs ExecuTorch installed: refuse before any work, saying why."""
    from export.errors import FormatUnavailableError
    from export.mobile import executorch_available

    ok, why = executorch_available()
    if not ok:
        raise FormatUnavailableError(f"cannot write .pte: {why}")


@dataclass(frozen=True)
class FormatWriter:
    """How one runtime format is written from the exported ONNX file/the prepared model, and what it needs first."""

    write: Any  # (prep, onnx_path, path, done) -> None; records parity_<format> in done.metrics
    preflight: Any = None  # () -> None, raises when the format cannot be written here
    calibrates: bool = False  # its INT8 file is calibrated on text (prep.calibration_batches: the run's train split)


class Writers(Mapping[str, FormatWriter]):
    """The writer of every registered format that names one (every format but onnx, always written first: the others
    convert it or re-trace the same wrapper), built from the registry's "module:function" strings at each lookup."""

    def __getitem__(self, fmt: str) -> FormatWriter:
        spec = FORMAT_SPECS.get(fmt)
        if spec is None or not spec.writer:
            raise KeyError(fmt)
        return FormatWriter(resolve(spec.writer), resolve(spec.preflight) if spec.preflight else None, spec.calibrates)

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, s in FORMAT_SPECS.items() if s.writer])

    def __len__(self) -> int:
        return sum(1 for _ in self)


WRITERS: Mapping[str, FormatWriter] = Writers()


def write_formats(prep: Prepared, out_dir: Path, formats: Sequence[str], opset: int = 17,
                  optimize: bool = False) -> Written:
    """Write model.onnx plus every format in ``formats`` into ``out_dir``; parity-check each; collect metrics."""
    from export import onnx_export

    for fmt in formats:
        get_head(prep.head.task, fmt)  # refuse unknown formats / heads before any work
    for fmt in formats:
        if fmt in WRITERS and WRITERS[fmt].preflight is not None:
            WRITERS[fmt].preflight()
    out_dir.mkdir(parents=True, exist_ok=True)
    done = Written()
    onnx_path = out_dir / FILE_NAMES["onnx"]
    done.metrics["parity_onnx"] = onnx_export.export_onnx(prep, onnx_path, opset)
    done.files["onnx"] = onnx_path
    if optimize:
        opt_path = out_dir / "model.optimized.onnx"
        opt = onnx_export.optimize_onnx(prep, onnx_path, opt_path)
        done.extra["onnx_optimized"] = opt_path
        done.metrics["parity_onnx_optimized"] = opt["parity"]
        done.metrics["fused_ops"] = opt["fused_ops"]
        done.metrics["attention_fused_layers"] = opt["attention_fused_layers"]
        done.metrics["num_layers"] = opt["num_layers"]
    for fmt in formats:
        if fmt == "onnx":
            continue
        path = out_dir / FILE_NAMES[fmt]
        WRITERS[fmt].write(prep, onnx_path, path, done)
        done.files[fmt] = path
    done.metrics["size_bytes"] = {str(p.relative_to(out_dir)): file_size(p) for p in
                                  [*done.files.values(), *done.extra.values(),
                                   *(q for by in done.precisions.values() for q in by.values())]}
    # a file that could not be run here (Core ML on Linux: ``predicted`` False) has no numbers to aggregate
    ran = [v for k, v in done.metrics.items() if k.startswith("parity_") and v.get("predicted", True)]
    done.metrics["max_abs_diff"] = max(v["max_abs_diff"] for v in ran)
    done.metrics["min_cosine"] = min(v["min_cosine"] for v in ran)
    done.metrics["max_rel_diff"] = max(v["max_rel_diff"] for v in ran)
    enforced = [v["bound_used"] for k, v in done.metrics.items() if k.startswith("parity_") and v.get("enforced", True)]
    done.metrics["bound_used"] = max(enforced, default=0.0)  # worst |diff| / allowed |diff| of the enforced checks
    done.metrics["opset"] = opset
    done.metrics["max_length"] = prep.max_length
    return done


def complete_formats(prep: Prepared, done: Written, out_dir: Path, formats: Sequence[str]) -> Written:
    """``done`` (an export's files and parity metrics) plus every format in ``formats`` it lacks, converted or
    re-traced into ``out_dir`` from its ``model.onnx``, never exporting the ONNX file again."""
    missing = [f for f in formats if f != "onnx" and f not in done.files]
    for fmt in missing:
        get_head(prep.head.task, fmt)
        if WRITERS[fmt].preflight is not None:
            WRITERS[fmt].preflight()
    if missing:
        out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in missing:
        path = out_dir / FILE_NAMES[fmt]
        WRITERS[fmt].write(prep, done.files["onnx"], path, done)
        done.files[fmt] = path
    return done
