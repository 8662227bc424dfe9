"""Which files one model is made of, and its size: the one answer for sizes, copies and manifests."""

from __future__ import annotations

from pathlib import Path


def model_files(path: Path) -> list[Path]:
    """The files one model is made of: an IR's .xml and its .bin, every file of a .mlpackage, else the file."""
    path = Path(path)
    if path.is_dir():
        return sorted(f for f in path.rglob("*") if f.is_file())
    weights = path.with_suffix(".bin")
    return [path, weights] if path.suffix == ".xml" and weights.is_file() else [path]


def file_size(path: Path) -> int:
    """Bytes of a model: its file, or every file it is made of (a Core ML ``.mlpackage``, an IR's .xml + .bin)."""
    return sum(f.stat().st_size for f in model_files(path))
