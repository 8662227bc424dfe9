"""The model a run ships (the search winner, the quantize stage's pick, or the fp32 export), as the package stage
and the model card see it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Choice:
    """The model a run ships: its PyTorch folder, the compressed ONNX file and where they came from."""

    model_dir: Path
    onnx: Path
    precision: str
    origin: str  # search winner | quantize | export
    name: str

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
