"""The model a run ships (the search winner, the quantize stage's pick, or the fp32 export), as the package stage
and the model card see it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Choice:
    """The model a run ships: its PyTorch folder, the compressed ONNX file and where they came from; a search
    winner another runtime runs also names that runtime and its file (the ONNX side is then its fp32 file)."""

    model_dir: Path
    onnx: Path
    precision: str  # of the chosen file
    origin: str  # search winner | quantize | export
    name: str
    runtime: str = "onnxruntime"  # what runs the chosen file (search.runtimes)
    file: Path | None = None  # the chosen file in its runtime's format when that runtime is not ONNX Runtime

    @property
    def onnx_precision(self) -> str:
        """Precision of ``onnx``: the chosen file's when ONNX Runtime runs it, else fp32 (its branch's export)."""
        return self.precision if self.runtime == "onnxruntime" else "fp32"

    @property
    def chosen_file(self) -> Path:
        """The file the run chose, whatever runtime runs it."""
        return self.file if self.file is not None else self.onnx

    def to_dict(self, run_dir: Path | None = None) -> dict[str, Any]:
        """As JSON; with ``run_dir``, paths relative to it (what package.json ships: no path of this machine)."""
        d = asdict(self)
        return {k: (run_relative(v, run_dir) if run_dir is not None else str(v)) if isinstance(v, Path) else v
                for k, v in d.items()}


def run_relative(path: Path, run_dir: Path | None) -> str:
    """``path`` relative to the run folder when it lies inside it, else its last two parts."""
    if run_dir is not None:
        try:
            return Path(path).resolve().relative_to(Path(run_dir).resolve()).as_posix()
        except ValueError:
            pass
    return Path(*Path(path).parts[-2:]).as_posix()
